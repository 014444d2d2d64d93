//! A deterministic model of lease-owned partitions fenced in the store: the argument of the
//! crate docs ("liveness checks are not the safety mechanism; the fence is"), as a test.
//!
//! `N` instances compete for `P` partitions through an etcd-like lease service (a TTL and one
//! global revision that becomes the owner's epoch). Instances pause (GC, SIGSTOP) for up to
//! three TTLs, lose the network to etcd and the store, and send commits that the network may
//! deliver late — including after a pause between the owner's local check and the send. A new
//! owner raises the partition's fence to its epoch before it loads state; the store accepts a
//! commit only if its epoch equals the fence (the PostgreSQL check in the batch's own
//! transaction). Time is in ticks; the TTL is 20 ticks.
//!
//! Invariant, checked at every delivery: per partition, accepted epochs never go backwards —
//! once a newer owner's commit (or fence) is in, no older owner's commit is ever accepted, so
//! two owners never interleave. With the fence no seed violates it; without the fence (owners
//! trusting their lease belief and local deadline) most seeds do, so the model keeps its
//! teeth. Gaps: clock drift (a liveness matter), rebalancing by hand-over, the load step.

/// Lease TTL in ticks.
const TTL: u64 = 20;
/// An owner stops committing this many ticks before its last keep-alive's TTL runs out.
const MARGIN: u64 = 2;
/// Partitions.
const P: usize = 4;
/// Instances.
const N: usize = 3;

/// xorshift64: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// etcd's view of one partition's lease.
#[derive(Clone, Copy)]
struct Lease {
    holder: usize,
    rev: u64,
    expires: u64,
}

/// An instance's belief that it owns a partition.
#[derive(Clone, Copy)]
struct Own {
    epoch: u64,
    /// Local deadline: the last keep-alive's tick + TTL − MARGIN.
    deadline: u64,
    /// The fence was raised to `epoch` (the takeover's first store transaction).
    fenced: bool,
}

struct Inst {
    paused_until: u64,
    cut: bool,
    own: [Option<Own>; P],
}

/// A commit on the wire.
#[derive(Clone, Copy)]
struct Commit {
    deliver_at: u64,
    inst: usize,
    partition: usize,
    epoch: u64,
}

/// Totals over the runs, printed by the tests.
#[derive(Debug, Default)]
struct Stats {
    leases_granted: u64,
    accepted: u64,
    rejected: u64,
    takeovers: u64,
    takeovers_with_older_commit_in_flight: u64,
}

struct World {
    t: u64,
    rev: u64,
    lease: [Option<Lease>; P],
    fence: [u64; P],
    inst: Vec<Inst>,
    net: Vec<Commit>,
    last_accepted: [u64; P],
}

/// Runs one seed; `Err` describes the first violation of the invariant.
fn run(seed: u64, fencing: bool, steps: u64, stats: &mut Stats) -> Result<(), String> {
    let mut r = Rng(seed | 1);
    let mut w = World {
        t: 0,
        rev: 0,
        lease: [None; P],
        fence: [0; P],
        inst: (0..N)
            .map(|_| Inst {
                paused_until: 0,
                cut: false,
                own: [None; P],
            })
            .collect(),
        net: Vec::new(),
        last_accepted: [0; P],
    };
    let mut due = Vec::new();
    for _ in 0..steps {
        w.t += 1;
        // etcd expires leases.
        for lease in &mut w.lease {
            if lease.is_some_and(|l| l.expires <= w.t) {
                *lease = None;
            }
        }
        // The store receives due commits; a paused sender's in-flight commit still lands.
        due.clear();
        let t = w.t;
        w.net.retain(|c| {
            if c.deliver_at <= t {
                due.push(*c);
                false
            } else {
                true
            }
        });
        for c in &due {
            if fencing && c.epoch != w.fence[c.partition] {
                stats.rejected += 1;
                continue;
            }
            if c.epoch < w.last_accepted[c.partition] {
                return Err(format!(
                    "seed {seed} t={} partition {}: instance {} committed epoch {} after epoch {}",
                    w.t, c.partition, c.inst, c.epoch, w.last_accepted[c.partition]
                ));
            }
            w.last_accepted[c.partition] = c.epoch;
            stats.accepted += 1;
        }
        // One instance acts: maybe it pauses (often past the TTL) or its network flips.
        let i = r.below(N as u64) as usize;
        match r.below(100) {
            0..=2 => w.inst[i].paused_until = w.t + r.below(3 * TTL),
            3..=4 => w.inst[i].cut = !w.inst[i].cut,
            _ => {}
        }
        if w.inst[i].paused_until > w.t || w.inst[i].cut {
            continue;
        }
        let p = r.below(P as u64) as usize;
        match (w.lease[p], w.inst[i].own[p]) {
            // Campaign: the partition is free.
            (None, _) => {
                stats.leases_granted += 1;
                w.rev += 1;
                w.lease[p] = Some(Lease {
                    holder: i,
                    rev: w.rev,
                    expires: w.t + TTL,
                });
                w.inst[i].own[p] = Some(Own {
                    epoch: w.rev,
                    deadline: w.t + TTL - MARGIN,
                    fenced: false,
                });
            }
            // Keep-alive of its own lease (half the time: replies get lost).
            (Some(l), Some(mut o)) if l.holder == i && l.rev == o.epoch && r.below(2) == 0 => {
                w.lease[p] = Some(Lease {
                    expires: w.t + TTL,
                    ..l
                });
                o.deadline = w.t + TTL - MARGIN;
                if !o.fenced {
                    // Takeover: raise the fence, then (not modelled) load the state.
                    stats.takeovers += 1;
                    if w.net.iter().any(|c| c.partition == p && c.epoch < o.epoch) {
                        stats.takeovers_with_older_commit_in_flight += 1;
                    }
                    w.fence[p] = w.fence[p].max(o.epoch);
                    o.fenced = true;
                }
                w.inst[i].own[p] = Some(o);
            }
            _ => {}
        }
        // Commit if it believes it owns p (checked against its local deadline); a pause
        // between that check and the send delays the commit, sometimes past the TTL.
        if let Some(o) = w.inst[i].own[p]
            && o.fenced
            && w.t < o.deadline
        {
            let delay = if r.below(20) == 0 {
                r.below(3 * TTL)
            } else {
                r.below(3)
            };
            w.net.push(Commit {
                deliver_at: w.t + delay,
                inst: i,
                partition: p,
                epoch: o.epoch,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: u64 = 2000;
    const STEPS: u64 = 5000;

    #[test]
    fn fenced_owners_never_interleave() {
        let mut stats = Stats::default();
        for seed in 1..=SEEDS {
            if let Err(violation) = run(seed, true, STEPS, &mut stats) {
                panic!("with the fence: {violation}");
            }
        }
        println!("with the fence, {SEEDS} seeds x {STEPS} steps, no violation: {stats:?}");
        // The runs must exercise the danger the fence exists for, or they prove nothing.
        assert!(stats.accepted > SEEDS * STEPS / 10, "{stats:?}");
        assert!(stats.takeovers_with_older_commit_in_flight > 0, "{stats:?}");
        assert!(
            stats.rejected > 0,
            "no zombie commit reached the store: {stats:?}"
        );
    }

    #[test]
    fn without_the_fence_the_model_finds_two_owners() {
        let mut stats = Stats::default();
        let violations: Vec<String> = (1..=SEEDS)
            .filter_map(|seed| run(seed, false, STEPS, &mut stats).err())
            .collect();
        println!(
            "without the fence: {} of {SEEDS} seeds violate; first: {}",
            violations.len(),
            violations.first().map_or("-", String::as_str)
        );
        assert!(
            violations.len() as u64 * 2 > SEEDS,
            "the unfenced model should fail for most seeds, failed for {}",
            violations.len()
        );
    }
}
