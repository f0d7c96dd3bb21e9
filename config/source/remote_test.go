package source

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseRemote(t *testing.T) {
	k := newTestKey(t)
	r, err := ParseRemote([]byte(`{"url":"https://fleet.example/gateways/{gateway}.json","interval":"1m","bearer_token":"t","_comment":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.interval() != time.Minute || r.timeout() != defaultTimeout || r.signatureURL() != "https://fleet.example/gateways/{gateway}.json.sig" {
		t.Fatalf("%+v: interval %s timeout %s sig %s", r, r.interval(), r.timeout(), r.signatureURL())
	}
	if got := expand(r.URL, "gw 1/a"); got != "https://fleet.example/gateways/gw%201%2Fa.json" {
		t.Fatalf("expand: %s", got)
	}
	if _, err := ParseRemote([]byte(`{"url":"http://10.0.0.1/{gateway}.json","public_key":"` + k.pub + `"}`)); err != nil {
		t.Fatalf("signed http: %v", err)
	}
	for doc, want := range map[string]string{
		`{}`:                                                             "url: is required",
		`{"url":"ftp://x/y"}`:                                            "url: must be an https://",
		`{"url":"http://x/{gateway}"}`:                                   "url: is plain http: set public_key",
		`{"url":"https:///y"}`:                                           "url: has no host",
		`{"url":"https://x/{id}.json"}`:                                  "url: unknown placeholder {id}",
		`{"url":"https://x/y","interval":"5"}`:                           "interval: must be a duration",
		`{"url":"https://x/y","interval":"10ms"}`:                        "interval: must be at least 1s",
		`{"url":"https://x/y","timeout":"-1s"}`:                          "timeout: must be positive",
		`{"url":"https://x/y","cert_file":"c.pem"}`:                      "key_file: is required with cert_file",
		`{"url":"https://x/y","key_file":"c.key"}`:                       "cert_file: is required with key_file",
		`{"url":"https://x/y","tls":false}`:                              "tls: is false but https:// is TLS: use http://",
		`{"url":"http://x/y","tls":true,"public_key":"` + testPub + `"}`: "tls: is true but http:// is not encrypted: use https://",
		`{"url":"https://x/y","insecure_skip_verify":true}`:              `insecure_skip_verify: is now called "insecure"`,
		`{"url":"https://x/y","public_key":"AAAA"}`:                      "public_key: public key must be 32 bytes, not 3",
		`{"url":"https://x/y","bearer_token":"a\nb"}`:                    "bearer_token: must not contain a line break",
		`{"url":"https://x/y","signature_url":"x.sig"}`:                  "signature_url: must be an https://",
		`{"url":"https://x/y","intervall":"1m"}`:                         "intervall: unknown",
		`{"url":`:                                                        "invalid JSON",
	} {
		_, err := ParseRemote([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

// FuzzParseRemote: any input gives settings or an error, never a panic,
// and accepted settings expand to a URL with a host.
func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://fleet.example/gateways/{gateway}.json","interval":"1m","timeout":"10s"}`,
		`{"url":"http://10.0.0.1/{gateway}.json","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"url":"https://x/{gateway}","signature_url":"https://y/{gateway}.sig","ca_file":"a","cert_file":"b","key_file":"c"}`,
		`{"url":"https://x/{`, `[]`, `null`, `{"url":1}`,
	} {
		f.Add([]byte(s), "gw-1")
	}
	f.Fuzz(func(t *testing.T, data []byte, gateway string) {
		r, err := ParseRemote(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, tmpl := range []string{r.URL, r.signatureURL()} {
			u, err := url.Parse(expand(tmpl, gateway))
			if err != nil || u.Host == "" {
				t.Fatalf("accepted %q, but for gateway %q it is %v (%v)", tmpl, gateway, u, err)
			}
		}
	})
}

// testPub is a valid ed25519 public key (32 zero bytes).
const testPub = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
