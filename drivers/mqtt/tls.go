package mqtt

import "crypto/tls"

// tlsConfig loads the broker's TLS files; nil for a plain URL.
func (b *broker) tlsConfig() (*tls.Config, error) {
	if !schemes[b.scheme] {
		return nil, nil
	}
	return b.Client.Load()
}
