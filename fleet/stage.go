package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/osgate/osgate/ota"
)

// Outcomes of judging a gateway in a step.
const (
	outDone    = "done"
	outFailed  = "failed"
	outPending = "pending"
)

// Errors of a rollout that stopped without reaching the whole fleet.
var (
	ErrHalted  = errors.New("rollout halted")
	ErrAborted = errors.New("rollout aborted")
)

// RolloutOptions start a release rollout.
type RolloutOptions struct {
	// Release is the directory `osgate release` made; Channel the
	// directory the gateways' agents pull from (ota.json's url, with
	// {cohort}, points into it).
	Release, Channel string
	// Selector chooses the gateways that follow the channel (all: every
	// gateway whose agent pulls a cohort's manifest).
	Selector    string
	Canary      Share
	Step        Share
	MaxFailures Share
	// StepTimeout is how long a gateway of a step has to confirm the
	// release before it counts as failed.
	StepTimeout time.Duration
}

// StartRollout publishes the release's parts into the channel and writes
// a new plan, or, when a rollout of the same release is under way and
// nobody drives it, takes that one up (its own settings stand). Drive
// then advances it.
func StartRollout(o RolloutOptions, out io.Writer) (*Plan, error) {
	if _, err := ParseSelector(o.Selector); err != nil {
		return nil, err
	}
	m, data, sig, err := readRelease(o.Release)
	if err != nil {
		return nil, err
	}
	st := Store{Dir: o.Channel}
	if p, err := st.Load(); err != nil {
		return nil, err
	} else if p != nil && p.Active() {
		if p.Target != m.Version {
			return nil, fmt.Errorf("a rollout of %s is %s in %s: let it finish, or `osgate fleet rollout abort` it first", p.Target, p.State, o.Channel)
		}
		fmt.Fprintf(out, "continuing the rollout of %s (%s, step %d; its settings: --canary %s --step %s --max-failures %s)\n",
			p.Target, p.State, len(p.Steps), p.Canary, p.Step, p.MaxFailures)
		return p, nil
	}
	if err := publishParts(m, o.Release, o.Channel); err != nil {
		return nil, err
	}
	base, err := readManifestFile(o.Channel, channelManifest)
	if err != nil {
		return nil, err
	}
	if base.Version == m.Version {
		return nil, fmt.Errorf("the channel %s already publishes %s in its manifest.json: nothing to roll out", o.Channel, m.Version)
	}
	if bm, err := ota.ParseManifest(base.Manifest); err == nil && bm.Channel != m.Channel {
		return nil, fmt.Errorf("the release is for channel %q, but %s publishes channel %q (its manifest.json): agents that follow %q would refuse it",
			m.Channel, o.Channel, bm.Channel, bm.Channel)
	}
	return st.Update(func(p *Plan) (*Plan, error) {
		if p != nil && p.Active() {
			return nil, fmt.Errorf("a rollout of %s was started in %s meanwhile", p.Target, o.Channel)
		}
		now := time.Now().UTC()
		return &Plan{Kind: "release", Target: m.Version, State: Running, Selector: o.Selector,
			Canary: o.Canary, Step: o.Step, MaxFailures: o.MaxFailures, StepTimeout: Duration(o.StepTimeout),
			Release: ReleaseFiles{Manifest: data, Sig: sig, Baseline: base.Version},
			Created: now, Reason: "started by " + who()}, nil
	})
}

// who names the operator in the plan: user@host.
func who() string {
	host, _ := os.Hostname()
	name := "?"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + "@" + host
}

// Rollout advances one channel's plan, judging each step from the status
// documents a Watch keeps.
type Rollout struct {
	store Store
	watch *Watch
	out   io.Writer
	me    Driver
	// Tick is how often a step is judged without news (tests shorten it).
	Tick time.Duration
}

// NewRollout drives the plan in channel with the fleet's view w,
// reporting to out.
func NewRollout(channel string, w *Watch, out io.Writer) *Rollout {
	host, _ := os.Hostname()
	return &Rollout{store: Store{Dir: channel}, watch: w, out: out,
		me: Driver{Host: host, PID: os.Getpid()}, Tick: time.Second}
}

func (r *Rollout) isMe(d *Driver) bool { return d != nil && d.Host == r.me.Host && d.PID == r.me.PID }

// Drive advances the plan until it is done (nil), halts (ErrHalted, once
// every gateway of it is on a confirmed version or a step timeout
// passed), is paused (nil) or aborted (ErrAborted) by another command.
func (r *Rollout) Drive(ctx context.Context) error {
	_, err := r.store.Update(func(p *Plan) (*Plan, error) {
		switch {
		case p == nil:
			return nil, fmt.Errorf("no rollout in %s", r.store.Dir)
		case !p.Active():
			return nil, fmt.Errorf("the rollout of %s is %s: nothing to drive", p.Target, p.State)
		case p.State == Paused:
			return nil, fmt.Errorf("the rollout of %s is paused (%s): `osgate fleet rollout resume` continues it", p.Target, p.Reason)
		case p.Driver.alive(time.Now()) && !r.isMe(p.Driver):
			return nil, fmt.Errorf("the rollout of %s is driven by process %d on %s (last seen %s ago): `osgate fleet rollout status` follows it",
				p.Target, p.Driver.PID, p.Driver.Host, time.Since(p.Driver.Beat).Round(time.Second))
		}
		r.beat(p)
		return p, nil
	})
	if err != nil {
		return err
	}
	lastBeat := time.Now()
	for {
		var (
			stop   error
			halted bool
			final  *Plan
		)
		_, err := r.store.Update(func(p *Plan) (*Plan, error) {
			if p == nil {
				return nil, fmt.Errorf("the rollout state in %s is gone", r.store.Dir)
			}
			switch p.State {
			case Paused:
				fmt.Fprintf(r.out, "rollout of %s paused (%s): `osgate fleet rollout resume` continues it\n", p.Target, p.Reason)
				p.Driver, stop = nil, errStopped
				return p, nil
			case Aborted:
				stop = fmt.Errorf("%w: %s", ErrAborted, p.Reason)
				return nil, nil
			case Running:
			default:
				stop = fmt.Errorf("the rollout of %s is %s", p.Target, p.State)
				return nil, nil
			}
			if !r.isMe(p.Driver) {
				stop = fmt.Errorf("another command took the rollout of %s over: `osgate fleet rollout status` follows it", p.Target)
				return nil, nil
			}
			changed, err := r.advance(p)
			if err != nil {
				return nil, err
			}
			if p.State == Halted || p.State == Done {
				halted, final, stop = p.State == Halted, p, errStopped
				p.Driver = nil
				return p, nil
			}
			if changed || time.Since(lastBeat) >= driverBeat {
				r.beat(p)
				lastBeat = time.Now()
				return p, nil
			}
			return nil, nil
		})
		if err != nil {
			r.release() // another command (or this one, again) may go on
			return fmt.Errorf("%w (the rollout stays as it was: `osgate fleet rollout resume` goes on)", err)
		}
		if halted {
			r.settle(ctx, final)
			return fmt.Errorf("%w: %s", ErrHalted, final.Reason)
		}
		if final != nil {
			fmt.Fprintf(r.out, "rollout of %s done: %d gateways confirmed it\n", final.Target, doneCount(final))
			return nil
		}
		if errors.Is(stop, errStopped) {
			return nil
		}
		if stop != nil {
			return stop
		}
		select {
		case <-ctx.Done():
			r.release()
			return fmt.Errorf("stopped driving the rollout (%w): `osgate fleet rollout resume` continues it", ctx.Err())
		case <-r.watch.Changed():
			// A large fleet's documents come all the time: a round (which
			// reads the state file) at most every Tick/4.
			time.Sleep(r.Tick / 4)
		case <-time.After(r.Tick):
		}
	}
}

var errStopped = errors.New("stopped")

// release says in the plan that nobody drives it any more, so another
// command may take it up at once.
func (r *Rollout) release() {
	_, _ = r.store.Update(func(p *Plan) (*Plan, error) {
		if p == nil || !r.isMe(p.Driver) {
			return nil, nil
		}
		p.Driver = nil
		return p, nil
	})
}

func (r *Rollout) beat(p *Plan) {
	me := r.me
	me.Beat = time.Now().UTC()
	p.Driver = &me
}

// advance does what the plan needs next: begin a step, publish it, or
// judge it; it says whether the plan changed. Called with the channel
// locked.
func (r *Rollout) advance(p *Plan) (bool, error) {
	var cur *Step
	if len(p.Steps) > 0 {
		cur = &p.Steps[len(p.Steps)-1]
	}
	switch {
	case cur != nil && cur.Outcome == "passed" && cur.Final:
		p.State, p.Reason = Done, fmt.Sprintf("every cohort and the channel's manifest.json publish %s", p.Target)
		return true, nil
	case cur == nil || cur.Outcome == "passed":
		step, err := r.nextStep(p)
		if err != nil {
			return false, err
		}
		p.Steps = append(p.Steps, step)
		// The plan is saved with the files' old content before they
		// change (the next round publishes them): a driver that stops in
		// between publishes the step again, and a halt can put them back.
		return true, nil
	case !cur.Applied:
		if err := applyRelease(p, r.store.Dir, cur); err != nil {
			return false, err
		}
		cur.Applied = true
		fmt.Fprintf(r.out, "step %d: %s published to cohorts 00-%02d%s: %d gateways to confirm it (%d of %d online ones so far), %d offline\n",
			len(p.Steps), p.Target, cur.Cohorts-1, finalText(cur.Final), len(cur.Gateways), cur.Want, p.Gateways, len(cur.Offline))
		return true, nil
	}
	return r.judgeStep(p, cur), nil
}

func finalText(final bool) string {
	if final {
		return " and manifest.json"
	}
	return ""
}

// participants are the online gateways that follow the channel, and the
// offline ones, as the view has them now.
func (r *Rollout) participants(p *Plan) (online, offline []Gateway, err error) {
	sel, err := ParseSelector(p.Selector)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range sel.Select(r.watch.Gateways(), time.Now()) {
		if g.Doc.OTA == nil || g.Doc.OTA.Cohort == nil {
			continue // its agent pulls no cohort's manifest
		}
		if g.Online() {
			online = append(online, g)
		} else {
			offline = append(offline, g)
		}
	}
	return online, offline, nil
}

// wantAt is how many of n gateways step i (from 0) is to reach: the
// canary (at least one), then a step more each time, all at the last.
func wantAt(p *Plan, i, n int) int {
	w := max(p.Canary.Of(n), min(1, n))
	if i > 0 {
		st := p.Step.Of(n)
		if st == 0 {
			return n // no step: the rest at once after the canary
		}
		w += i * st
	}
	return min(w, n)
}

// nextStep chooses the cohorts of the next step: from those enabled so
// far, one more at a time until the step's share of the online gateways
// is reached; every cohort and the channel's manifest.json when that is
// all of them.
func (r *Rollout) nextStep(p *Plan) (Step, error) {
	online, offline, err := r.participants(p)
	if err != nil {
		return Step{}, err
	}
	n := len(online)
	if n == 0 {
		return Step{}, fmt.Errorf("no online gateway follows the channel (selector %q, and an agent that pulls a cohort's manifest): see `osgate fleet ls`", p.Selector)
	}
	p.Gateways = n
	i := len(p.Steps)
	want := wantAt(p, i, n)
	byCohort := func(gs []Gateway, below int) (in []string) {
		for _, g := range gs {
			if *g.Doc.OTA.Cohort < below {
				in = append(in, g.ID)
			}
		}
		return in
	}
	cohorts := p.Release.Cohorts
	for cohorts < ota.Cohorts && len(byCohort(online, cohorts)) < want {
		cohorts++
	}
	step := Step{Want: want, Cohorts: cohorts, Started: time.Now().UTC()}
	if want >= n || len(byCohort(online, cohorts)) >= n {
		step.Final, step.Cohorts = true, ota.Cohorts
	}
	judged := map[string]bool{}
	for _, s := range p.Steps {
		for _, id := range s.Gateways {
			judged[id] = true
		}
	}
	for _, id := range byCohort(online, step.Cohorts) {
		if !judged[id] {
			step.Gateways = append(step.Gateways, id)
		}
	}
	for _, id := range byCohort(offline, step.Cohorts) {
		if !judged[id] {
			step.Offline = append(step.Offline, id)
		}
	}
	if err := rememberBefore(p, r.store.Dir, releaseFiles(step.Cohorts, step.Final)); err != nil {
		return Step{}, err
	}
	return step, nil
}

// judgeStep updates a step's done and failed gateways and ends it: halted
// when its failures pass --max-failures, passed when none is pending.
func (r *Rollout) judgeStep(p *Plan, cur *Step) bool {
	if cur.Failed == nil {
		cur.Failed = map[string]string{}
	}
	changed := false
	for _, id := range cur.Gateways {
		if slices.Contains(cur.Done, id) || cur.Failed[id] != "" {
			continue
		}
		g, ok := r.watch.Get(id)
		if !ok {
			continue
		}
		switch out, why := judgeRelease(p.Target, g); out {
		case outDone:
			cur.Done = append(cur.Done, id)
			changed = true
			fmt.Fprintf(r.out, "  %s confirmed %s\n", id, p.Target)
		case outFailed:
			cur.Failed[id] = why
			changed = true
			fmt.Fprintf(r.out, "  %s failed: %s\n", id, why)
		}
	}
	pending := len(cur.Gateways) - len(cur.Done) - len(cur.Failed)
	if pending > 0 && time.Since(cur.Started) > time.Duration(p.StepTimeout) {
		for _, id := range cur.Gateways {
			if !slices.Contains(cur.Done, id) && cur.Failed[id] == "" {
				cur.Failed[id] = fmt.Sprintf("not confirmed on %s within the step timeout %s", p.Target, time.Duration(p.StepTimeout))
				fmt.Fprintf(r.out, "  %s failed: %s\n", id, cur.Failed[id])
			}
		}
		pending, changed = 0, true
	}
	failures, allowed := len(cur.Failed), p.MaxFailures.Allowed(len(cur.Gateways))
	switch {
	case failures > allowed:
		reason := fmt.Sprintf("step %d: %d of %d gateways failed, more than the %d allowed (--max-failures %s): %s",
			len(p.Steps), failures, len(cur.Gateways), allowed, p.MaxFailures, failedList(cur.Failed))
		haltPlan(p, r.store.Dir, Halted, reason)
		fmt.Fprintf(r.out, "halted: %s\n", reason)
		return true
	case pending == 0:
		cur.Outcome, cur.Ended = "passed", time.Now().UTC()
		fmt.Fprintf(r.out, "step %d passed: %d confirmed, %d failed (%d allowed)\n", len(p.Steps), len(cur.Done), failures, allowed)
		return true
	}
	return changed
}

// haltPlan ends a plan (halted or aborted) and puts back every file it
// replaced. Called with the channel locked.
func haltPlan(p *Plan, dir, state, reason string) {
	p.State, p.Reason = state, reason
	if n := len(p.Steps); n > 0 && p.Steps[n-1].Outcome == "" {
		p.Steps[n-1].Outcome, p.Steps[n-1].Ended = state, time.Now().UTC()
	}
	if err := revertRelease(p, dir); err != nil {
		p.Reason += "; putting back the manifests failed (" + err.Error() + "): copy manifest.json of " + orDash(p.Release.Baseline) + " over the cohort files by hand"
	}
	p.Release.Cohorts = 0
}

// settle waits, a step timeout at most, until no gateway of the plan is
// in the middle of an update (each is on a confirmed version: the one it
// had, or the release), then says where they stand.
func (r *Rollout) settle(ctx context.Context, p *Plan) {
	ids := planGateways(p)
	fmt.Fprintf(r.out, "the manifests are back as they were (%s); waiting for updates under way to end\n", orDash(p.Release.Baseline))
	deadline := time.Now().Add(time.Duration(p.StepTimeout))
	for {
		var busyIDs []string
		for _, id := range ids {
			if g, ok := r.watch.Get(id); ok && busy(g) {
				busyIDs = append(busyIDs, id)
			}
		}
		if len(busyIDs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(r.out, "still updating after %s: %s\n", time.Duration(p.StepTimeout), list(busyIDs, 10))
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-r.watch.Changed():
		case <-time.After(r.Tick):
		}
	}
	var gws []Gateway
	for _, id := range ids {
		if g, ok := r.watch.Get(id); ok {
			gws = append(gws, g)
		}
	}
	fmt.Fprintf(r.out, "the rollout's gateways now: %s\n", Summary(gws))
}

// planGateways are the gateways of every step, online or not.
func planGateways(p *Plan) []string {
	var ids []string
	for _, s := range p.Steps {
		ids = append(ids, s.Gateways...)
		ids = append(ids, s.Offline...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func doneCount(p *Plan) int {
	n := 0
	for _, st := range p.Steps {
		n += len(st.Done)
	}
	return n
}

func failedList(m map[string]string) string {
	var parts []string
	for _, id := range sortedKeys(m) {
		parts = append(parts, id+": "+m[id])
	}
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more", len(parts)-5))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Pause stops the rollout in channel from going on to its next step (the
// files published stay); the driver stops at its next round.
func Pause(channel, reason string) (*Plan, error) {
	return Store{Dir: channel}.Update(func(p *Plan) (*Plan, error) {
		if p == nil || p.State != Running {
			return nil, notIn(p, channel, "running")
		}
		p.State, p.Reason = Paused, "paused by "+who()+withReason(reason)
		return p, nil
	})
}

// Resume marks a paused rollout running again; Drive then continues it.
func Resume(channel string) (*Plan, error) {
	return Store{Dir: channel}.Update(func(p *Plan) (*Plan, error) {
		if p == nil || !p.Active() {
			return nil, notIn(p, channel, "paused or running")
		}
		if p.State == Paused {
			p.State, p.Reason = Running, "resumed by "+who()
			return p, nil
		}
		return nil, nil // running: whoever drives it is judged by Drive
	})
}

// Abort ends the rollout in channel and puts back every manifest it
// replaced; gateways that already confirmed the release keep it (an agent
// never goes back to an older version), those in the middle of the update
// finish it by their own health.
func Abort(channel, reason string) (*Plan, error) {
	return Store{Dir: channel}.Update(func(p *Plan) (*Plan, error) {
		if p == nil || !p.Active() {
			return nil, notIn(p, channel, "running or paused")
		}
		haltPlan(p, channel, Aborted, "aborted by "+who()+withReason(reason))
		p.Driver = nil
		return p, nil
	})
}

func withReason(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func notIn(p *Plan, channel, want string) error {
	if p == nil {
		return fmt.Errorf("no rollout in %s", channel)
	}
	return fmt.Errorf("the rollout of %s in %s is %s, not %s", p.Target, channel, p.State, want)
}

// WritePlan writes a plan for an operator: its state, then each step.
func WritePlan(w io.Writer, p *Plan, now time.Time) {
	fmt.Fprintf(w, "rollout of %s (from %s): %s", p.Target, orDash(p.Release.Baseline), p.State)
	if p.Reason != "" {
		fmt.Fprintf(w, ": %s", p.Reason)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "settings: --canary %s --step %s --max-failures %s --step-timeout %s --gateways %q\n",
		p.Canary, p.Step, p.MaxFailures, time.Duration(p.StepTimeout), p.Selector)
	if p.Driver != nil {
		fmt.Fprintf(w, "driven by process %d on %s, last seen %s\n", p.Driver.PID, p.Driver.Host, ago(p.Driver.Beat, now))
	} else if p.State == Running {
		fmt.Fprintln(w, "nobody drives it: `osgate fleet rollout resume` continues it")
	}
	for i, s := range p.Steps {
		outcome := s.Outcome
		if outcome == "" {
			outcome = "under way"
			if !s.Applied {
				outcome = "not yet published"
			}
		}
		fmt.Fprintf(w, "step %d: cohorts 00-%02d%s, %d of %d online gateways: %s: %d confirmed, %d failed, %d pending, %d offline\n",
			i+1, s.Cohorts-1, finalText(s.Final), s.Want, p.Gateways, outcome, len(s.Done), len(s.Failed),
			len(s.Gateways)-len(s.Done)-len(s.Failed), len(s.Offline))
		for _, id := range sortedKeys(s.Failed) {
			fmt.Fprintf(w, "  %s failed: %s\n", id, s.Failed[id])
		}
	}
}
