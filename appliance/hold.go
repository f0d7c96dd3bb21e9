package appliance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/drivers/core"
)

// The clock hold: while no time source has answered (clock.Hold), each
// message of readings is appended to a file in the state dir instead of
// going to the export. When a source answers, or the hold's time is up,
// the messages leave in order, re-stamped where the clock was moved since
// they were taken, with quality uncertain; messages that come in while
// they leave are appended behind them, so the order is kept. The file
// survives a restart of the gateway and of osgate.

const (
	// holdFile holds the messages; holdDoneFile how many bytes of it have
	// left already (written after each release, so a restart resends at
	// most one round's messages).
	holdFile     = "clockhold"
	holdDoneFile = "clockhold.done"
	// maxHoldBytes: a fuller hold starts releasing before its time is
	// up, rather than fill the disk.
	maxHoldBytes = 64 << 20
	// maxHeldLine bounds one message as read back.
	maxHeldLine = maxHoldBytes
	// restampWindow: a held reading is re-stamped only when its time is
	// this close to when it was held (the gateway stamped it; a device's
	// own timestamp is left alone).
	restampWindow = 10 * time.Minute
)

// heldMessage is one device's readings as held: one line of the file.
type heldMessage struct {
	Topic    string        `json:"topic"`
	Conn     string        `json:"conn"`
	Device   string        `json:"device"`
	Mark     clock.Mark    `json:"mark"`
	Readings []heldReading `json:"readings"`
}

// heldReading is a core.Reading with its value's type kept: "f" float64
// (as text, so NaN and ±Inf survive), "i" int64, "b" bool, "s" string,
// "" none.
type heldReading struct {
	Device  string `json:"d,omitempty"`
	Channel string `json:"c"`
	Kind    string `json:"k,omitempty"`
	Value   string `json:"v,omitempty"`
	Unit    string `json:"u,omitempty"`
	Time    int64  `json:"t"`
	Quality uint8  `json:"q,omitempty"`
	Err     string `json:"e,omitempty"`
}

func toHeld(r core.Reading) heldReading {
	h := heldReading{Device: r.Device, Channel: r.Channel, Unit: r.Unit, Time: r.Time.UnixNano(), Quality: uint8(r.Quality)}
	switch v := r.Value.(type) {
	case float64:
		h.Kind, h.Value = "f", strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		h.Kind, h.Value = "i", strconv.FormatInt(v, 10)
	case bool:
		h.Kind, h.Value = "b", strconv.FormatBool(v)
	case string:
		h.Kind, h.Value = "s", v
	}
	if r.Err != nil {
		h.Err = r.Err.Error()
	}
	return h
}

func (h heldReading) reading() (core.Reading, error) {
	r := core.Reading{Device: h.Device, Channel: h.Channel, Unit: h.Unit, Time: time.Unix(0, h.Time)}
	if h.Quality > uint8(core.Bad) {
		return r, fmt.Errorf("channel %q: quality %d", h.Channel, h.Quality)
	}
	r.Quality = core.Quality(h.Quality)
	var err error
	switch h.Kind {
	case "f":
		r.Value, err = strconv.ParseFloat(h.Value, 64)
	case "i":
		r.Value, err = strconv.ParseInt(h.Value, 10, 64)
	case "b":
		r.Value, err = strconv.ParseBool(h.Value)
	case "s":
		r.Value = h.Value
	case "":
		if r.Quality != core.Bad {
			return r, fmt.Errorf("channel %q: no value, yet quality %s", h.Channel, r.Quality)
		}
	default:
		return r, fmt.Errorf("channel %q: value kind %q", h.Channel, h.Kind)
	}
	if err != nil {
		return r, fmt.Errorf("channel %q: %w", h.Channel, err)
	}
	if h.Err != "" {
		r.Err = errors.New(h.Err)
	}
	return r, nil
}

// decodeHeld reads one line of the hold file. Any input is safe.
func decodeHeld(line []byte) (heldMessage, []core.Reading, error) {
	var m heldMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return m, nil, err
	}
	if m.Topic == "" || strings.ContainsAny(m.Topic, "+#\x00") {
		return m, nil, fmt.Errorf("topic %q", m.Topic)
	}
	if len(m.Readings) == 0 {
		return m, nil, errors.New("no readings")
	}
	rs := make([]core.Reading, 0, len(m.Readings))
	for _, h := range m.Readings {
		r, err := h.reading()
		if err != nil {
			return m, nil, err
		}
		rs = append(rs, r)
	}
	return m, rs, nil
}

// restamp moves the readings the gateway stamped by as far as the clock
// was moved since they were held (moved, when known: same boot), and
// makes good ones uncertain: their time was not from a time source.
func restamp(rs []core.Reading, held time.Time, moved time.Duration, known bool) {
	for i := range rs {
		r := &rs[i]
		if known && moved.Abs() > time.Second {
			if d := r.Time.Sub(held); d.Abs() <= restampWindow {
				r.Time = r.Time.Add(moved)
			}
		}
		if r.Quality == core.Good {
			r.Quality = core.Uncertain
		}
	}
}

// hold is the file of held messages.
type hold struct {
	path, donePath string
	mu             sync.Mutex
	f              *os.File // for appending; nil when the file is empty and gone
	size           int64    // bytes in the file
	done           int64    // bytes released
	pending        int      // messages not released
	dirty          bool     // appended since the last fsync
	// opened is told (capacity 1) when the first message is held: the
	// releasing loop sleeps while nothing is.
	opened chan struct{}
}

// openHold opens the hold in dir, counting what a previous run left.
func openHold(dir string, log *slog.Logger) (*hold, error) {
	h := &hold{path: filepath.Join(dir, holdFile), donePath: filepath.Join(dir, holdDoneFile), opened: make(chan struct{}, 1)}
	fi, err := os.Stat(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		os.Remove(h.donePath)
		metrics.ClockHeld.Set(0)
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clock hold: %w", err)
	}
	h.size = fi.Size()
	if cut, err := h.cutTornTail(); err != nil {
		return nil, err
	} else if cut > 0 {
		log.Warn("clock hold: the last held message was cut short by a crash or power cut and is lost", "bytes", cut)
	}
	if b, err := os.ReadFile(h.donePath); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 0 && n <= h.size {
			h.done = n
		}
	}
	if h.f, err = os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("clock hold: %w", err)
	}
	if h.pending, err = h.count(); err != nil {
		h.f.Close()
		return nil, err
	}
	metrics.ClockHeld.Set(float64(h.pending))
	return h, nil
}

// cutTornTail cuts a last line without its newline off the file: a
// write that a crash or a power cut interrupted. What it held is lost
// (it was never acknowledged to anyone but the connector).
func (h *hold) cutTornTail() (int64, error) {
	if h.size == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(h.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("clock hold: %w", err)
	}
	defer f.Close()
	// Look back for the last newline, in blocks.
	end := h.size
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, fmt.Errorf("clock hold: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	cut := h.size - end
	if cut == 0 {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("clock hold: cut the torn last message: %w", err)
	}
	h.size = end
	return cut, nil
}

// count counts the lines not yet released.
func (h *hold) count() (int, error) {
	f, err := os.Open(h.path)
	if err != nil {
		return 0, fmt.Errorf("clock hold: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(h.done, io.SeekStart); err != nil {
		return 0, fmt.Errorf("clock hold: %w", err)
	}
	n := 0
	br := bufio.NewReader(f)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("clock hold: %w", err)
		}
		if b == '\n' {
			n++
		}
	}
}

// active reports whether messages wait: new ones must queue behind them.
func (h *hold) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f != nil
}

// full reports whether the hold should release before its time is up.
func (h *hold) full() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size-h.done >= maxHoldBytes
}

// held is how many messages wait.
func (h *hold) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

// add appends one message. An error (a full disk) keeps nothing.
func (h *hold) add(m heldMessage) error {
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("clock hold: %w", err)
	}
	line = append(line, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		if h.f, err = os.OpenFile(h.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600); err != nil {
			h.f = nil
			return fmt.Errorf("clock hold: %w", err)
		}
		h.size, h.done = 0, 0
		select {
		case h.opened <- struct{}{}:
		default:
		}
	}
	n, err := h.f.Write(line)
	if err != nil {
		// Cut a partial line off, so the file stays whole lines.
		if n > 0 {
			h.f.Truncate(h.size)
		}
		return fmt.Errorf("clock hold: %w", err)
	}
	h.size += int64(n)
	h.pending++
	h.dirty = true
	metrics.ClockHeld.Set(float64(h.pending))
	return nil
}

// sync makes what was appended durable (called once a second).
func (h *hold) sync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil && h.dirty {
		h.f.Sync()
		h.dirty = false
	}
}

// heldLine is one message as read back, and the file offset after it.
// A line too long to read back has no data.
type heldLine struct {
	data []byte
	end  int64
}

// batch reads the messages after the released part (which begins at
// start), up to maxBytes of them (at least one).
func (h *hold) batch(maxBytes int64) (start int64, lines []heldLine, err error) {
	h.mu.Lock()
	start, size := h.done, h.size
	h.mu.Unlock()
	if start >= size {
		return start, nil, nil
	}
	f, err := os.Open(h.path)
	if err != nil {
		return start, nil, fmt.Errorf("clock hold: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.NewSectionReader(f, start, size-start))
	end := start
	for end-start < maxBytes {
		line, n, err := readLine(r, maxHeldLine)
		if errors.Is(err, io.EOF) {
			break
		}
		end += n
		lines = append(lines, heldLine{data: line, end: end})
	}
	return start, lines, nil
}

// readLine reads one line with its newline and says how many bytes it
// took; a line longer than max is consumed and returned empty; a last
// line without its newline (only a crash makes one; openHold cuts it)
// reads as io.EOF.
func readLine(r *bufio.Reader, max int) ([]byte, int64, error) {
	var buf []byte
	var n int64
	for {
		chunk, err := r.ReadSlice('\n')
		n += int64(len(chunk))
		if n <= int64(max) {
			buf = append(buf, chunk...)
		}
		switch {
		case err == nil:
			if n > int64(max) {
				return nil, n, nil
			}
			return buf, n, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, n, io.EOF
		}
	}
}

// released marks the messages up to end (of count lines) as gone; when
// nothing is left, the file is removed and new messages go straight to
// the export.
func (h *hold) released(end int64, count int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = end
	h.pending = max(h.pending-count, 0)
	metrics.ClockHeld.Set(float64(h.pending))
	if h.done >= h.size {
		if h.f != nil {
			h.f.Close()
			h.f = nil
		}
		os.Remove(h.path)
		os.Remove(h.donePath)
		h.size, h.done, h.pending, h.dirty = 0, 0, 0, false
		metrics.ClockHeld.Set(0)
		return
	}
	os.WriteFile(h.donePath, []byte(strconv.FormatInt(end, 10)), 0o600)
}

// close closes the file; what waits stays for the next gateway.
func (h *hold) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		h.f.Sync()
		h.f.Close()
		h.f = nil
	}
}
