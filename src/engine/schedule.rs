//! The engine's schedule of messages waiting for their sample: a binary heap of fixed
//! capacity ordered by (sample, arrival), so messages for the same sample apply in the order
//! they arrived, with a count of entries per source. Insertion and removal cost O(log n)
//! whatever the load (a sorted array's insert would move up to n entries), and nothing is
//! allocated after [`Schedule::new`]. Real-time safe.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::control::{Command, Refusal};

/// A command waiting for its sample.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: u64,
    arrival: u64,
    source: u16,
    command: Command,
}

impl Entry {
    fn key(&self) -> (u64, u64) {
        (self.at, self.arrival)
    }
}

// `BinaryHeap` is a max-heap: the earliest (sample, arrival) compares greatest.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

/// Messages waiting for their sample, at most `share` per source.
pub(crate) struct Schedule {
    heap: BinaryHeap<Entry>,
    per_source: Vec<u32>,
    share: u32,
    arrival: u64,
}

impl Schedule {
    /// A schedule for `sources` sources of `share` entries each. Allocates.
    pub(crate) fn new(sources: usize, share: usize) -> Schedule {
        Schedule {
            heap: BinaryHeap::with_capacity(sources * share),
            per_source: vec![0; sources],
            share: share as u32,
            arrival: 0,
        }
    }

    /// Adds a command for sample `at` from `source`, after everything already scheduled for
    /// the same sample; refused when that source's share is full.
    pub(crate) fn insert(
        &mut self,
        at: u64,
        source: usize,
        command: Command,
    ) -> Result<(), Refusal> {
        let Some(count) = self.per_source.get_mut(source) else {
            return Err(Refusal::ScheduleFull);
        };
        if *count >= self.share {
            return Err(Refusal::ScheduleFull);
        }
        *count += 1;
        // every source within its share keeps the heap within the capacity it was built
        // with, so this push never reallocates
        self.heap.push(Entry {
            at,
            arrival: self.arrival,
            source: source as u16,
            command,
        });
        self.arrival += 1;
        Ok(())
    }

    /// The sample of the earliest entry.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at)
    }

    /// Takes the earliest entry if it is due at `now` (its sample is `now` or earlier).
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Command> {
        if self.heap.peek()?.at > now {
            return None;
        }
        let entry = self.heap.pop()?;
        if let Some(count) = self.per_source.get_mut(entry.source as usize) {
            *count = count.saturating_sub(1);
        }
        Some(entry.command)
    }

    /// Entries waiting from one source.
    pub(crate) fn pending(&self, source: usize) -> usize {
        self.per_source.get(source).map_or(0, |&c| c as usize)
    }

    /// Entries waiting in all.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(section: u16) -> Command {
        Command::Cue { section }
    }

    fn section(c: Command) -> u16 {
        match c {
            Command::Cue { section } => section,
            _ => unreachable!(),
        }
    }

    #[test]
    fn entries_come_out_by_sample_then_by_arrival() {
        let mut s = Schedule::new(2, 8);
        for (i, (at, source)) in [(50, 0), (10, 1), (50, 1), (10, 0), (30, 0), (50, 0)]
            .into_iter()
            .enumerate()
        {
            s.insert(at, source, cue(i as u16)).unwrap();
        }
        assert_eq!(s.next_at(), Some(10));
        assert_eq!(s.pop_due(9), None, "nothing due before 10");
        let mut order = Vec::new();
        while let Some(c) = s.pop_due(100) {
            order.push(section(c));
        }
        assert_eq!(order, [1, 3, 4, 0, 2, 5]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn each_source_is_bounded_by_its_share_and_never_grows_the_heap() {
        let mut s = Schedule::new(3, 16);
        let capacity = s.heap.capacity();
        for i in 0..16 {
            s.insert(1_000 - i, 1, cue(0)).unwrap();
        }
        assert_eq!(s.insert(5, 1, cue(0)), Err(Refusal::ScheduleFull));
        // the others still have their whole share
        for i in 0..16 {
            s.insert(i, 0, cue(0)).unwrap();
            s.insert(i, 2, cue(0)).unwrap();
        }
        assert_eq!(
            s.insert(0, 7, cue(0)),
            Err(Refusal::ScheduleFull),
            "no such source"
        );
        assert_eq!((s.pending(1), s.len()), (16, 48));
        assert_eq!(s.heap.capacity(), capacity, "no reallocation");
        // taking one frees one place of its source
        while s.pop_due(985).is_some() {}
        assert_eq!(s.pending(1), 15);
        assert!(s.insert(5, 1, cue(0)).is_ok());
    }
}
