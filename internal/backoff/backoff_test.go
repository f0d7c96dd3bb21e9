package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{First: 100 * time.Millisecond, Max: 30 * time.Second}
	for failures, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		9: 25600 * time.Millisecond, 10: 30 * time.Second, 1000: 30 * time.Second,
	} {
		if got := p.Delay(failures); got != want {
			t.Errorf("Delay(%d) = %s, want %s", failures, got, want)
		}
	}
	if got := (Policy{First: time.Hour, Max: time.Minute}).Delay(3); got != time.Minute {
		t.Errorf("First beyond Max: %s, want Max", got)
	}
	huge := Policy{First: time.Second, Max: 1<<63 - 1}
	if got := huge.Delay(200); got <= 0 {
		t.Errorf("200 doublings overflowed: %s", got)
	}
}

func TestJitter(t *testing.T) {
	for range 500 {
		d := Policy{First: time.Second, Max: time.Minute, Jitter: Equal}.Delay(3)
		if d < 2*time.Second || d >= 4*time.Second {
			t.Fatalf("Equal: %s, want within [2s, 4s)", d)
		}
		d = Policy{First: time.Second, Max: time.Minute, Jitter: Tenth}.Delay(3)
		if d < 3600*time.Millisecond || d > 4400*time.Millisecond {
			t.Fatalf("Tenth: %s, want within 4s ±10 %%", d)
		}
		if d := Random(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("Random: %s", d)
		}
	}
	if Random(0) != 0 || Random(-time.Second) != 0 {
		t.Fatal("Random of a non-positive duration is not 0")
	}
}

func TestPeriodic(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, time.Minute, time.Hour} {
		first := min(30*time.Second, interval)
		for range 200 {
			if d := Periodic(interval, first, 0); d <= interval*9/10 || d > interval {
				t.Fatalf("interval %s, success: %s, want within (0.9, 1] of the interval", interval, d)
			}
		}
		for failures := 1; failures <= 20; failures++ {
			want := min(first<<min(failures-1, 30), interval)
			for range 50 {
				if d := Periodic(interval, first, failures); d < want/2 || d > want {
					t.Fatalf("interval %s, %d failures: %s, want within [%s, %s]", interval, failures, d, want/2, want)
				}
			}
		}
	}
}
