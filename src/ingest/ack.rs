//! One hit's acknowledgement: the writer's side ([`Ack`]) and the waiting handler's
//! ([`Answer`]), sharing one allocation.
//!
//! The handler and the writer race for the hit exactly once: the writer claims it
//! when it takes it into a batch, the handler abandons it when its wait runs out
//! first. An abandoned hit is never written, and a claimed one is answered with its
//! commit's outcome (or, if the writer lets go of it unanswered, as it does at a stop
//! that cannot write, with "closed") — so every answer is exact.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

const PENDING: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;
const STORED: u8 = 3;
const NOT_STORED: u8 = 4;
const CLOSED: u8 = 5;

struct Cell {
    state: AtomicU8,
    waker: AtomicWaker,
}

/// The writer's side.
pub(super) struct Ack(Arc<Cell>);

/// The handler's side: a future of the commit's outcome, `None` if the writer let go
/// of the hit unanswered.
pub(super) struct Answer(Arc<Cell>);

pub(super) fn pair() -> (Ack, Answer) {
    let cell = Arc::new(Cell {
        state: AtomicU8::new(PENDING),
        waker: AtomicWaker::new(),
    });
    (Ack(cell.clone()), Answer(cell))
}

fn settle(cell: &Cell, from: u8, to: u8) -> bool {
    cell.state
        .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

impl Ack {
    /// Takes the hit into a batch; false if its handler abandoned it first.
    pub(super) fn claim(&self) -> bool {
        settle(&self.0, PENDING, CLAIMED)
    }

    /// Tells the handler its claimed hit's outcome.
    pub(super) fn answer(self, stored: bool) {
        let to = if stored { STORED } else { NOT_STORED };
        if settle(&self.0, CLAIMED, to) {
            self.0.waker.wake();
        }
    }
}

impl Drop for Ack {
    /// Unanswered (a stop, a queue dropped with it): the handler hears "closed".
    fn drop(&mut self) {
        if settle(&self.0, CLAIMED, CLOSED) || settle(&self.0, PENDING, CLOSED) {
            self.0.waker.wake();
        }
    }
}

impl Answer {
    /// Gives up on the hit; false if the writer claimed it first (then its commit
    /// decides, and the answer comes).
    pub(super) fn abandon(&self) -> bool {
        settle(&self.0, PENDING, ABANDONED)
    }

    fn outcome(&self) -> Option<Option<bool>> {
        match self.0.state.load(Ordering::Acquire) {
            STORED => Some(Some(true)),
            NOT_STORED => Some(Some(false)),
            CLOSED => Some(None),
            _ => None,
        }
    }
}

impl Future for Answer {
    type Output = Option<bool>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<bool>> {
        if let Some(o) = self.outcome() {
            return Poll::Ready(o);
        }
        self.0.waker.register(cx.waker());
        // Answered between the first look and the registration: its wake may have
        // found no waker.
        match self.outcome() {
            Some(o) => Poll::Ready(o),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claimed_hit_hears_its_commit_and_an_abandoned_one_is_not_taken() {
        let (ack, answer) = pair();
        assert!(ack.claim());
        assert!(!answer.abandon(), "claimed first: the commit decides");
        let waiting = tokio::spawn(answer);
        tokio::task::yield_now().await;
        ack.answer(false);
        assert_eq!(waiting.await.unwrap(), Some(false));

        let (ack, answer) = pair();
        assert!(answer.abandon());
        assert!(!ack.claim(), "abandoned: never written");
        drop(ack);

        let (ack, answer) = pair();
        assert!(ack.claim());
        drop(ack);
        assert_eq!(answer.await, None, "let go of unanswered: closed");
        let (ack, answer) = pair();
        assert!(ack.claim());
        ack.answer(true);
        assert_eq!(answer.await, Some(true));
    }
}
