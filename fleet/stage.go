package fleet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"
)

// The staging of this file is shared by the kinds of rollout: a release
// (release.go: cohort manifests of an update channel) and a configuration
// (configpush.go: each gateway's pulled document). A stager is what a kind
// does that the staging does not.

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

// stager is one kind of rollout: which gateways take part, which files a
// step writes and puts back, and how a gateway is judged.
type stager interface {
	// takesPart says whether a selected gateway can take part.
	takesPart(g Gateway) bool
	// choose makes the step that reaches want of the online gateways:
	// every gateway it reaches (judged in an earlier step or not) and
	// the offline ones its files reach. It saves in p, before the files
	// change, each file the step replaces for the first time.
	choose(p *Plan, dir string, online, offline []Gateway, want int) (Step, error)
	// apply writes the step's files and says what it did.
	apply(p *Plan, dir string, s *Step) (string, error)
	// revert puts back every file the rollout replaced, as it was; on
	// an error, help says what to do by hand.
	revert(p *Plan, dir string) error
	revertHelp(p *Plan) string
	// judge says whether a gateway is done, failed (and why) or pending.
	judge(p *Plan, g Gateway) (outcome, why string)
	// busy says whether a gateway is between versions after a halt.
	busy(p *Plan, g Gateway) bool
	// reach names what a step reaches (status: "cohorts 00-09").
	reach(s Step) string
	// back says that the files are back as they were.
	back(p *Plan) string
	// doneReason is the plan's reason once done; none the error when no
	// gateway takes part.
	doneReason(p *Plan) string
	none(p *Plan) error
}

// Plan kinds.
const (
	KindRelease = "release"
	KindConfig  = "config"
)

// stagerOf is the stager of p's kind; key signs configurations (nil: a
// step of a configuration cannot be written).
func stagerOf(p *Plan, key ed25519.PrivateKey) stager {
	if p.Kind == KindConfig {
		return configStager{key: key}
	}
	return releaseStager{}
}

// command is the osgate command that handles p's kind.
func (p *Plan) command() string {
	if p.Kind == KindConfig {
		return "osgate fleet config"
	}
	return "osgate fleet rollout"
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

// Rollout advances one directory's plan, judging each step from the
// status documents a Watch keeps.
type Rollout struct {
	store Store
	watch *Watch
	out   io.Writer
	me    Driver
	// Tick is how often a step is judged without news (tests shorten it).
	Tick time.Duration
	// ConfigKey signs the documents of a configuration's push (the key
	// the push was started with).
	ConfigKey ed25519.PrivateKey
}

// NewRollout drives the release plan in channel with the fleet's view w,
// reporting to out.
func NewRollout(channel string, w *Watch, out io.Writer) *Rollout {
	return NewDriver(Store{Dir: channel}, w, out)
}

// NewDriver drives the plan in st with the fleet's view w, reporting to
// out.
func NewDriver(st Store, w *Watch, out io.Writer) *Rollout {
	host, _ := os.Hostname()
	return &Rollout{store: st, watch: w, out: out,
		me: Driver{Host: host, PID: os.Getpid()}, Tick: time.Second}
}

func (r *Rollout) isMe(d *Driver) bool { return d != nil && d.Host == r.me.Host && d.PID == r.me.PID }

func (r *Rollout) kind(p *Plan) stager { return stagerOf(p, r.ConfigKey) }

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
			return nil, fmt.Errorf("the rollout of %s is paused (%s): `%s resume` continues it", p.Target, p.Reason, p.command())
		case p.Driver.alive(time.Now()) && !r.isMe(p.Driver):
			return nil, fmt.Errorf("the rollout of %s is driven by process %d on %s (last seen %s ago): `%s status` follows it",
				p.Target, p.Driver.PID, p.Driver.Host, time.Since(p.Driver.Beat).Round(time.Second), p.command())
		}
		if p.Kind == KindConfig {
			if err := CheckConfigKey(p, r.ConfigKey); err != nil {
				return nil, err
			}
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
			cmd    = "osgate fleet rollout"
		)
		_, err := r.store.Update(func(p *Plan) (*Plan, error) {
			if p == nil {
				return nil, fmt.Errorf("the rollout state in %s is gone", r.store.Dir)
			}
			cmd = p.command()
			switch p.State {
			case Paused:
				fmt.Fprintf(r.out, "rollout of %s paused (%s): `%s resume` continues it\n", p.Target, p.Reason, cmd)
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
				stop = fmt.Errorf("another command took the rollout of %s over: `%s status` follows it", p.Target, cmd)
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
			return fmt.Errorf("%w (the rollout stays as it was: `%s resume` goes on)", err, cmd)
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
			return fmt.Errorf("stopped driving the rollout (%w): `%s resume` continues it", ctx.Err(), cmd)
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
// judge it; it says whether the plan changed. Called with the directory
// locked.
func (r *Rollout) advance(p *Plan) (bool, error) {
	var cur *Step
	if len(p.Steps) > 0 {
		cur = &p.Steps[len(p.Steps)-1]
	}
	k := r.kind(p)
	switch {
	case cur != nil && cur.Outcome == "passed" && cur.Final:
		p.State, p.Reason = Done, k.doneReason(p)
		return true, nil
	case cur == nil || cur.Outcome == "passed":
		step, err := r.nextStep(p, k)
		if err != nil {
			return false, err
		}
		p.Steps = append(p.Steps, step)
		// The plan is saved with the files' old content before they
		// change (the next round publishes them): a driver that stops in
		// between publishes the step again, and a halt can put them back.
		return true, nil
	case !cur.Applied:
		what, err := k.apply(p, r.store.Dir, cur)
		if err != nil {
			return false, err
		}
		cur.Applied = true
		fmt.Fprintf(r.out, "step %d: %s: %d gateways to confirm it (%d of %d online ones so far), %d offline\n",
			len(p.Steps), what, len(cur.Gateways), cur.Want, p.Gateways, len(cur.Offline))
		return true, nil
	}
	return r.judgeStep(p, k, cur), nil
}

// participants are the online gateways of the plan's selection that can
// take part, and the offline ones, as the view has them now.
func (r *Rollout) participants(p *Plan, k stager) (online, offline []Gateway, err error) {
	sel, err := ParseSelector(p.Selector)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range sel.Select(r.watch.Gateways(), time.Now()) {
		if !k.takesPart(g) {
			continue
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

// nextStep makes the next step: the kind chooses what it reaches; the
// gateways judged in an earlier step are not judged again.
func (r *Rollout) nextStep(p *Plan, k stager) (Step, error) {
	online, offline, err := r.participants(p, k)
	if err != nil {
		return Step{}, err
	}
	n := len(online)
	if n == 0 {
		return Step{}, k.none(p)
	}
	p.Gateways = n
	step, err := k.choose(p, r.store.Dir, online, offline, wantAt(p, len(p.Steps), n))
	if err != nil {
		return Step{}, err
	}
	judged := map[string]bool{}
	for _, s := range p.Steps {
		for _, id := range s.Gateways {
			judged[id] = true
		}
	}
	step.Gateways = slices.DeleteFunc(step.Gateways, func(id string) bool { return judged[id] })
	step.Offline = slices.DeleteFunc(step.Offline, func(id string) bool { return judged[id] })
	step.Started = time.Now().UTC()
	return step, nil
}

// judgeStep updates a step's done and failed gateways and ends it: halted
// when its failures pass --max-failures, passed when none is pending.
func (r *Rollout) judgeStep(p *Plan, k stager, cur *Step) bool {
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
		switch out, why := k.judge(p, g); out {
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
// replaced. Called with the directory locked.
func haltPlan(p *Plan, dir, state, reason string) {
	p.State, p.Reason = state, reason
	if n := len(p.Steps); n > 0 && p.Steps[n-1].Outcome == "" {
		p.Steps[n-1].Outcome, p.Steps[n-1].Ended = state, time.Now().UTC()
	}
	k := stagerOf(p, nil)
	if err := k.revert(p, dir); err != nil {
		p.Reason += "; putting back the files failed (" + err.Error() + "): " + k.revertHelp(p)
	}
}

// settle waits, a step timeout at most, until no gateway of the plan is
// between versions (each is on a confirmed one: the one it had, or the
// target), then says where they stand.
func (r *Rollout) settle(ctx context.Context, p *Plan) {
	ids := planGateways(p)
	k := r.kind(p)
	fmt.Fprintf(r.out, "%s; waiting for changes under way to end\n", k.back(p))
	deadline := time.Now().Add(time.Duration(p.StepTimeout))
	for {
		var busyIDs []string
		for _, id := range ids {
			if g, ok := r.watch.Get(id); ok && k.busy(p, g) {
				busyIDs = append(busyIDs, id)
			}
		}
		if len(busyIDs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(r.out, "still changing after %s: %s\n", time.Duration(p.StepTimeout), list(busyIDs, 10))
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
func Pause(channel, reason string) (*Plan, error) { return Store{Dir: channel}.Pause(reason) }

// Resume marks a paused rollout in channel running again; Drive then
// continues it.
func Resume(channel string) (*Plan, error) { return Store{Dir: channel}.Resume() }

// Abort ends the rollout in channel and puts back every file it replaced
// (see Store.Abort).
func Abort(channel, reason string) (*Plan, error) { return Store{Dir: channel}.Abort(reason) }

// Pause stops the rollout from going on to its next step (the files
// written stay); the driver stops at its next round.
func (s Store) Pause(reason string) (*Plan, error) {
	return s.Update(func(p *Plan) (*Plan, error) {
		if p == nil || p.State != Running {
			return nil, notIn(p, s.Dir, "running")
		}
		p.State, p.Reason = Paused, "paused by "+who()+withReason(reason)
		return p, nil
	})
}

// Resume marks a paused rollout running again; Drive then continues it.
func (s Store) Resume() (*Plan, error) {
	return s.Update(func(p *Plan) (*Plan, error) {
		if p == nil || !p.Active() {
			return nil, notIn(p, s.Dir, "paused or running")
		}
		if p.State == Paused {
			p.State, p.Reason = Running, "resumed by "+who()
			return p, nil
		}
		return nil, nil // running: whoever drives it is judged by Drive
	})
}

// Abort ends the rollout and puts back every file it replaced. Of a
// release, gateways that already confirmed it keep it (an agent never
// goes back to an older version), those in the middle of the update
// finish it by their own health; of a configuration, every gateway pulls
// its old document again.
func (s Store) Abort(reason string) (*Plan, error) {
	return s.Update(func(p *Plan) (*Plan, error) {
		if p == nil || !p.Active() {
			return nil, notIn(p, s.Dir, "running or paused")
		}
		haltPlan(p, s.Dir, Aborted, "aborted by "+who()+withReason(reason))
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

func notIn(p *Plan, dir, want string) error {
	if p == nil {
		return fmt.Errorf("no rollout in %s", dir)
	}
	return fmt.Errorf("the rollout of %s in %s is %s, not %s", p.Target, dir, p.State, want)
}

// WritePlan writes a plan for an operator: its state, then each step.
func WritePlan(w io.Writer, p *Plan, now time.Time) {
	k := stagerOf(p, nil)
	fmt.Fprintf(w, "rollout of %s", p.Target)
	if p.Kind != KindConfig {
		fmt.Fprintf(w, " (from %s)", orDash(p.Release.Baseline))
	}
	fmt.Fprintf(w, ": %s", p.State)
	if p.Reason != "" {
		fmt.Fprintf(w, ": %s", p.Reason)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "settings: --canary %s --step %s --max-failures %s --step-timeout %s --gateways %q\n",
		p.Canary, p.Step, p.MaxFailures, time.Duration(p.StepTimeout), p.Selector)
	if p.Driver != nil {
		fmt.Fprintf(w, "driven by process %d on %s, last seen %s\n", p.Driver.PID, p.Driver.Host, ago(p.Driver.Beat, now))
	} else if p.State == Running {
		fmt.Fprintf(w, "nobody drives it: `%s resume` continues it\n", p.command())
	}
	for i, s := range p.Steps {
		outcome := s.Outcome
		if outcome == "" {
			outcome = "under way"
			if !s.Applied {
				outcome = "not yet published"
			}
		}
		fmt.Fprintf(w, "step %d: %s, %d of %d online gateways: %s: %d confirmed, %d failed, %d pending, %d offline\n",
			i+1, k.reach(s), s.Want, p.Gateways, outcome, len(s.Done), len(s.Failed),
			len(s.Gateways)-len(s.Done)-len(s.Failed), len(s.Offline))
		for _, id := range sortedKeys(s.Failed) {
			fmt.Fprintf(w, "  %s failed: %s\n", id, s.Failed[id])
		}
	}
}
