package ui

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// bundle sends gateway.diagnostics as a .tar.gz a technician can mail to
// support: one file per part. It holds what the key may read and nothing
// more (the configuration, redacted, for an admin key only), and no
// secret: the gateway's methods cut them out.
func (h *handler) bundle(w http.ResponseWriter, r *http.Request, u user) {
	var d map[string]json.RawMessage
	if err := h.call(r.Context(), u, "gateway.diagnostics", nil, &d); err != nil {
		http.Error(w, "diagnostics: "+errText(err), http.StatusBadGateway)
		return
	}
	now := time.Now().UTC()
	var id string
	var st struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(d["status"], &st) == nil {
		id = st.ID
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dir := "osgate-diagnostics-" + fileSafe(id) + "-" + now.Format("20060102T150405Z")
	add := func(name string, body []byte) error {
		hdr := &tar.Header{Name: dir + "/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	var err error
	put := func(name string, body []byte) {
		if err == nil {
			err = add(name, body)
		}
	}
	put("README.txt", []byte(fmt.Sprintf("osgate diagnostics of gateway %s, made %s by %s (scope %s) on the technician's pages.\n"+
		"Each file is one part of gateway.diagnostics (appliance/rpc/README.md). Secrets are cut out;\n"+
		"the configuration is included (redacted) only for an admin key.\n", id, now.Format(time.RFC3339), u.Name, u.Scope)))
	for _, part := range []string{"versions", "status", "config_status", "config", "config_note", "connectors", "devices", "values", "ota", "errors"} {
		raw, ok := d[part]
		if !ok {
			continue
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, raw, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(raw)
		}
		pretty.WriteByte('\n')
		put(strings.ReplaceAll(part, "_", "-")+".json", pretty.Bytes())
	}
	var logs logsResult
	if json.Unmarshal(d["logs"], &logs) == nil {
		text := strings.Join(logs.Lines, "\n") + "\n"
		if logs.Evicted > 0 {
			text = fmt.Sprintf("(%d older lines are no longer kept)\n", logs.Evicted) + text
		}
		put("logs.txt", []byte(text))
	}
	var metrics string
	if json.Unmarshal(d["metrics"], &metrics) == nil {
		put("metrics.txt", []byte(metrics))
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		http.Error(w, "diagnostics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+dir+`.tar.gz"`)
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.Write(buf.Bytes())
	h.log.Info("ui: diagnostics downloaded", "caller", u.Name, "remote", r.RemoteAddr, "bytes", buf.Len())
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileSafe is a gateway id fit for a file name.
func fileSafe(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if s == "" {
		return "gateway"
	}
	return s
}
