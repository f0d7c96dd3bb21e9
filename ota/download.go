package ota

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errCorrupt marks a part whose bytes do not match the manifest.
var errCorrupt = errors.New("part does not match the manifest")

// fetchManifest gets manifest.json (conditionally on etag) and its
// signature. notModified is true for a 304.
func (a *Agent) fetchManifest(ctx context.Context, etag string) (data, sig []byte, newTag string, notModified bool, err error) {
	resp, err := a.get(ctx, a.url, func(r *http.Request) {
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
	})
	if err != nil {
		return nil, nil, "", false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil, etag, true, nil
	case http.StatusOK:
	default:
		return nil, nil, "", false, fmt.Errorf("fetch %s: HTTP %s", a.url, resp.Status)
	}
	if data, err = readSmall(resp.Body); err != nil {
		return nil, nil, "", false, fmt.Errorf("fetch %s: %w", a.url, err)
	}
	newTag = resp.Header.Get("ETag")
	sresp, err := a.get(ctx, a.url+".sig", nil)
	if err != nil {
		return nil, nil, "", false, err
	}
	defer sresp.Body.Close()
	switch sresp.StatusCode {
	case http.StatusOK:
		if sig, err = readSmall(sresp.Body); err != nil {
			return nil, nil, "", false, fmt.Errorf("fetch %s.sig: %w", a.url, err)
		}
	case http.StatusNotFound, http.StatusForbidden: // unsigned: refused by the caller
	default:
		return nil, nil, "", false, fmt.Errorf("fetch %s.sig: HTTP %s", a.url, sresp.Status)
	}
	return data, sig, newTag, false, nil
}

func readSmall(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("larger than %d bytes", maxManifest)
	}
	return b, nil
}

func (a *Agent) get(ctx context.Context, u string, edit func(*http.Request)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	req.Header.Set("Cache-Control", "no-cache")
	if edit != nil {
		edit(req)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	return resp, nil
}

func (a *Agent) partURL(p Part) (string, error) {
	base, err := url.Parse(a.url)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(p.File)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(ref).String(), nil
}

func (a *Agent) partPath(p Part) string { return filepath.Join(a.dir, "parts", p.File) }

// download brings one part's file into the parts directory, resuming a
// partial file with a Range request, and checks it against the manifest
// (size and sha256 of the file, then of the image it decompresses to).
// progress is called with the bytes of this part on disk.
func (a *Agent) download(ctx context.Context, p Part, progress func(int64)) error {
	path := a.partPath(p)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	progress(have)
	if have < p.FileSize {
		if err := a.fetchPart(ctx, f, p, have, progress); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	if err := checkFile(f, p); err != nil {
		f.Close()
		os.Remove(path) // fetched afresh next time
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	return nil
}

// fetchPart appends the part's bytes from offset have to f.
func (a *Agent) fetchPart(ctx context.Context, f *os.File, p Part, have int64, progress func(int64)) error {
	u, err := a.partURL(p)
	if err != nil {
		return fmt.Errorf("download %s: %w", p.File, err)
	}
	resp, err := a.get(ctx, u, func(r *http.Request) {
		if have > 0 {
			r.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)):
		a.log.Info("ota: resuming download", "file", p.File, "from", have)
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("download %s: %w", p.File, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("download %s: %w", p.File, err)
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		f.Truncate(0)
		return fmt.Errorf("download %s: server refused to resume at %d (starting over next time)", p.File, have)
	default:
		return fmt.Errorf("download %s: HTTP %s", u, resp.Status)
	}
	buf := make([]byte, 32<<10)
	body := io.LimitReader(resp.Body, p.FileSize-have+1)
	for {
		n, rerr := io.ReadFull(body, buf) // whole chunks: a step per 32 KiB
		if n > 0 {
			if have+int64(n) > p.FileSize {
				f.Truncate(0)
				return fmt.Errorf("download %s: %w: more than %d bytes", p.File, errCorrupt, p.FileSize)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("download %s: %w", p.File, err)
			}
			have += int64(n)
			progress(have)
			a.hook("download " + p.File)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("download %s: %w", p.File, rerr)
		}
	}
	if have != p.FileSize {
		return fmt.Errorf("download %s: got %d of %d bytes (resuming next time)", p.File, have, p.FileSize)
	}
	return nil
}

// checkFile compares a downloaded file with the manifest: the file's size
// and hash, then the decompressed image's.
func checkFile(f *os.File, p Part) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != p.FileSize || hex.EncodeToString(h.Sum(nil)) != p.FileSha256 {
		return fmt.Errorf("%w: file has %d bytes and sha256 %x, the manifest says %d and %s", errCorrupt, n, h.Sum(nil), p.FileSize, p.FileSha256)
	}
	_, err = readImage(f, p, nil)
	return err
}

// readImage decompresses a part's file into w (nil: discard), checks the
// image's size and sha256 and returns the bytes of the boot part's
// command-line extents.
func readImage(f *os.File, p Part, w io.Writer) ([][]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader = f
	if p.Compression == "gzip" {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		zr.Multistream(false)
		r = zr
	}
	h := sha256.New()
	ex := &extentCopier{extents: p.Cmdline}
	if w == nil {
		w = io.Discard
	}
	n, err := io.Copy(io.MultiWriter(w, h, ex), io.LimitReader(r, p.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", errCorrupt, err)
	}
	if n != p.Size || hex.EncodeToString(h.Sum(nil)) != p.Sha256 {
		return nil, fmt.Errorf("%w: image has %d bytes and sha256 %x, the manifest says %d and %s", errCorrupt, n, h.Sum(nil), p.Size, p.Sha256)
	}
	return ex.got, nil
}

// extentCopier keeps the bytes of extents from a stream.
type extentCopier struct {
	extents []Extent
	got     [][]byte
	off     int64
}

func (e *extentCopier) Write(p []byte) (int, error) {
	if e.got == nil {
		e.got = make([][]byte, len(e.extents))
	}
	overlap(e.extents, e.off, len(p), func(i int, dst, src int64, n int64) {
		if e.got[i] == nil {
			e.got[i] = make([]byte, e.extents[i].Length)
		}
		copy(e.got[i][dst:dst+n], p[src:src+n])
	})
	e.off += int64(len(p))
	return len(p), nil
}

// overlap calls fn for every extent that overlaps the chunk [off, off+n):
// the offset into the extent, the offset into the chunk and the length.
func overlap(extents []Extent, off int64, n int, fn func(i int, inExtent, inChunk, length int64)) {
	end := off + int64(n)
	for i, x := range extents {
		lo, hi := max(x.Offset, off), min(x.Offset+x.Length, end)
		if lo < hi {
			fn(i, lo-x.Offset, lo-off, hi-lo)
		}
	}
}

// patchReader replaces the bytes of extents in a stream.
type patchReader struct {
	r       io.Reader
	extents []Extent
	with    [][]byte
	off     int64
}

func (p *patchReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	overlap(p.extents, p.off, n, func(i int, inExtent, inChunk, length int64) {
		copy(b[inChunk:inChunk+length], p.with[i][inExtent:inExtent+length])
	})
	p.off += int64(n)
	return n, err
}
