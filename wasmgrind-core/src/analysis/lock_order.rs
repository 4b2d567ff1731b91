//! Analyses of a trace.
//!
//! [`lock_order`] builds the lock-order graph of a trace: an edge `A -> B` for every time a
//! thread acquired `B` while it held `A`. A cycle in that graph is a *potential deadlock*:
//! threads that take the locks of the cycle in its orders at the same time can block each
//! other forever, even if this run did not. [`LockOrder::cycles`] lists them.

use std::collections::{BTreeMap, VecDeque};

use crate::trace::{DenseOp, DenseTrace};

/// An edge of the lock-order graph: `(held, acquired)`, as dense lock ids.
pub type Edge = (u32, u32);

/// The lock-order graph of a trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockOrder {
    /// Every edge, in order of first appearance, with the dense threads that took it and
    /// how often each did.
    pub edges: Vec<(Edge, BTreeMap<u32, u32>)>,
}

/// The lock-order graph of `trace`. A release removes the lock from its thread's held
/// set wherever it is (locks need not be released in reverse order).
pub fn lock_order(trace: &DenseTrace) -> LockOrder {
    let mut held: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut order = LockOrder::default();
    for event in &trace.events {
        let stack = held.entry(event.thread).or_default();
        match event.op {
            DenseOp::Acquire { lock } => {
                for &outer in stack.iter() {
                    let edge = (outer, lock);
                    let at = match order.edges.iter().position(|(e, _)| *e == edge) {
                        Some(at) => at,
                        None => {
                            order.edges.push((edge, BTreeMap::new()));
                            order.edges.len() - 1
                        }
                    };
                    *order.edges[at].1.entry(event.thread).or_default() += 1;
                }
                stack.push(lock);
            }
            DenseOp::Release { lock } => {
                if let Some(at) = stack.iter().rposition(|&l| l == lock) {
                    stack.remove(at);
                }
            }
            _ => {}
        }
    }
    order
}

impl LockOrder {
    /// The cycles of the graph (potential deadlocks), each as its locks in order, starting
    /// with its smallest lock, without duplicates: for every edge, the shortest cycle
    /// through it.
    pub fn cycles(&self) -> Vec<Vec<u32>> {
        let next = |l: u32| {
            self.edges
                .iter()
                .filter(move |(e, _)| e.0 == l)
                .map(|(e, _)| e.1)
        };
        let mut cycles: Vec<Vec<u32>> = Vec::new();
        for &((from, to), _) in &self.edges {
            // Breadth-first search from `to` back to `from`.
            let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
            let mut queue = VecDeque::from([to]);
            let mut found = to == from;
            while let Some(l) = queue.pop_front() {
                if found {
                    break;
                }
                for n in next(l) {
                    if n == from {
                        parent.insert(from, l);
                        found = true;
                        break;
                    }
                    if n != to && !parent.contains_key(&n) {
                        parent.insert(n, l);
                        queue.push_back(n);
                    }
                }
            }
            if !found {
                continue;
            }
            let mut cycle = vec![from];
            let mut l = from;
            while l != to {
                l = parent[&l];
                cycle.push(l);
            }
            // `cycle` is from, ..., to backwards; make it from -> to -> ... -> from.
            cycle[1..].reverse();
            let min_at = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
            cycle.rotate_left(min_at);
            if !cycles.contains(&cycle) {
                cycles.push(cycle);
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::std_text;

    fn order(std: &str) -> LockOrder {
        lock_order(&std_text::decode(std).unwrap())
    }

    #[test]
    fn inverted_order_is_a_cycle() {
        let o = order(
            "T0|acq(L0)|0\nT0|acq(L1)|0\nT0|rel(L1)|0\nT0|rel(L0)|0\n\
             T1|acq(L1)|0\nT1|acq(L0)|0\nT1|rel(L0)|0\nT1|rel(L1)|0\n",
        );
        assert_eq!(o.edges.len(), 2);
        assert_eq!(o.edges[0].0, (0, 1));
        assert_eq!(o.edges[0].1, BTreeMap::from([(0, 1)]));
        assert_eq!(o.edges[1].0, (1, 0));
        assert_eq!(o.cycles(), vec![vec![0, 1]]);
    }

    #[test]
    fn consistent_order_has_no_cycle() {
        let o = order(
            "T0|acq(L0)|0\nT0|acq(L1)|0\nT0|rel(L1)|0\nT0|rel(L0)|0\n\
             T1|acq(L0)|0\nT1|acq(L1)|0\nT1|rel(L0)|0\nT1|rel(L1)|0\n",
        );
        assert_eq!(o.edges.len(), 1);
        assert!(o.cycles().is_empty());
    }

    #[test]
    fn longer_cycles_are_found_once() {
        // T0 takes L2 while it holds L0 and L1, T1 takes L0 while it holds L2: the cycles
        // L0 -> L1 -> L2 -> L0 and L0 -> L2 -> L0, each listed once.
        let o = order(
            "T0|acq(L0)|0\nT0|acq(L1)|0\nT0|acq(L2)|0\nT0|rel(L2)|0\nT0|rel(L1)|0\nT0|rel(L0)|0\n\
             T1|acq(L2)|0\nT1|acq(L0)|0\nT1|rel(L0)|0\nT1|rel(L2)|0\n",
        );
        assert_eq!(o.cycles(), vec![vec![0, 1, 2], vec![0, 2]]);
    }
}
