package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed static
var staticFiles embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

// staticAssets are the files of static/, each with its gzip form, and a
// version (the pages link them with ?v=VERSION, so a browser caches each
// for a year and fetches a new one after an update). They are made when
// first asked for: compressing them at start cost a few MB of heap that
// an idle gateway kept resident.
var staticAssets = sync.OnceValues(loadAssets)

func loadAssets() (map[string]*asset, string) {
	out := map[string]*asset{}
	entries, err := staticFiles.ReadDir("static")
	if err != nil {
		panic(err)
	}
	all := sha256.New()
	for _, e := range entries {
		b, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		all.Write(sum[:])
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		out[e.Name()] = &asset{body: b, gz: gz.Bytes(), ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out, hex.EncodeToString(all.Sum(nil)[:6])
}

// serveStatic serves an embedded file; it needs no sign-in (the sign-in
// page uses them) and holds nothing of the gateway.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	assets, assetVersion := staticAssets()
	a := assets[r.PathValue("file")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == assetVersion {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	w.Write(body)
}
