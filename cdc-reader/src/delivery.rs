//! Which LSN may be confirmed to PostgreSQL: the rule that makes the reader lose nothing.
//!
//! The reader sends records to Kafka as they arrive and Kafka acknowledges them later, in any
//! order across partitions. PostgreSQL keeps WAL from the slot's `confirmed_flush_lsn` on, and
//! after a restart resends every transaction that committed after it. So the reader may confirm
//! a transaction's commit end LSN only when Kafka acknowledged every record of that transaction
//! **and of all transactions before it**. Never sooner; never backwards.
//!
//! ```text
//!  tx 7 (end 0/1A0): 3 sent, 3 acked   ┐ confirmed = 0/1A0: everything up to it is in Kafka
//!  tx 8 (end 0/1F8): 2 sent, 1 acked   ┘ waits; tx 9 is fully acked but cannot pass tx 8
//!  tx 9 (end 0/240): 1 sent, 1 acked
//!  tx 10 (open):     4 sent so far
//! ```
//!
//! Each transaction gets a *ticket* (a sequence number); every record of it is sent with that
//! ticket, and the sink's acknowledgement brings the ticket back. Pure bookkeeping, no I/O.
//!
//! After a lost connection the reader resumes from the slot and the server sends everything
//! after its `confirmed_flush_lsn` again, so [`DeliveryTracker::restart_at`] forgets what was in
//! flight. Kafka may still acknowledge records sent before that (they are duplicates now, the
//! server resends them): tickets keep counting up across restarts, so such a late
//! acknowledgement names a ticket from before the restart and is ignored; it can never count
//! for a transaction read after it.

use std::collections::VecDeque;

use crate::lsn::Lsn;

#[derive(Debug)]
struct InFlight {
    /// The commit's end LSN; None while the transaction is still being read.
    end_lsn: Option<Lsn>,
    /// Records sent and not yet acknowledged.
    pending: u64,
}

/// Tracks records in flight per transaction and the LSN that is safe to confirm.
#[derive(Debug)]
pub struct DeliveryTracker {
    /// The ticket of `in_flight[0]`.
    first_ticket: u64,
    in_flight: VecDeque<InFlight>,
    confirmed: Lsn,
    /// Tickets below this were handed out before the last [`DeliveryTracker::restart_at`].
    stale_below: u64,
    /// Acknowledgements that arrived for such tickets (ignored).
    stale_acks: u64,
}

/// Errors that mean the bookkeeping was fed something impossible (a bug, not bad input).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrackerError {
    #[error("acknowledgement for unknown ticket {0}")]
    UnknownTicket(u64),
    #[error("more acknowledgements than records for ticket {0}")]
    TooManyAcks(u64),
    #[error("ticket {0} is not the open transaction")]
    NotOpen(u64),
}

impl DeliveryTracker {
    /// Starts with `start` confirmed (the slot's confirmed_flush_lsn).
    pub fn new(start: Lsn) -> Self {
        DeliveryTracker {
            first_ticket: 0,
            in_flight: VecDeque::new(),
            confirmed: start,
            stale_below: 0,
            stale_acks: 0,
        }
    }

    /// A new replication session resumes from `slot_confirmed` (the slot's confirmed_flush_lsn,
    /// which after a crash may be older than what was confirmed before): everything in flight is
    /// forgotten, since the server sends it again. The only place the confirmed LSN may go back:
    /// the server ignores a flush position behind its own, so nothing is lost either way.
    pub fn restart_at(&mut self, slot_confirmed: Lsn) {
        let next = self.first_ticket + self.in_flight.len() as u64;
        self.in_flight.clear();
        self.first_ticket = next;
        self.stale_below = next;
        self.confirmed = slot_confirmed;
    }

    /// Whether `ticket` was handed out before the last restart (its acknowledgement is moot).
    pub fn is_stale(&self, ticket: u64) -> bool {
        ticket < self.stale_below
    }

    /// Whether every record of transaction `ticket`, and of all transactions before it, is
    /// acknowledged (and the transaction committed): what a chunk's progress waits for. A
    /// ticket from before the last restart does not count: its records are being resent.
    pub fn is_delivered(&self, ticket: u64) -> bool {
        ticket >= self.stale_below && ticket < self.first_ticket
    }

    /// Acknowledgements ignored because their ticket was from before a restart.
    pub fn stale_acks(&self) -> u64 {
        self.stale_acks
    }

    /// The LSN that is safe to report as flushed.
    pub fn confirmed(&self) -> Lsn {
        self.confirmed
    }

    /// Transactions not yet fully acknowledged (or still open).
    pub fn transactions_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records sent and not yet acknowledged, over all transactions.
    pub fn records_in_flight(&self) -> u64 {
        self.in_flight.iter().map(|t| t.pending).sum()
    }

    /// Opens a transaction (at BEGIN) and returns its ticket.
    pub fn begin(&mut self) -> u64 {
        self.in_flight.push_back(InFlight {
            end_lsn: None,
            pending: 0,
        });
        self.first_ticket + self.in_flight.len() as u64 - 1
    }

    fn entry(&mut self, ticket: u64) -> Result<&mut InFlight, TrackerError> {
        let index = ticket
            .checked_sub(self.first_ticket)
            .ok_or(TrackerError::UnknownTicket(ticket))?;
        self.in_flight
            .get_mut(index as usize)
            .ok_or(TrackerError::UnknownTicket(ticket))
    }

    /// One more record of transaction `ticket` went to the sink.
    pub fn sent(&mut self, ticket: u64) -> Result<(), TrackerError> {
        let entry = self.entry(ticket)?;
        if entry.end_lsn.is_some() {
            return Err(TrackerError::NotOpen(ticket));
        }
        entry.pending += 1;
        Ok(())
    }

    /// The transaction `ticket` committed at `end_lsn` (all its records are sent).
    pub fn commit(&mut self, ticket: u64, end_lsn: Lsn) -> Result<(), TrackerError> {
        let entry = self.entry(ticket)?;
        if entry.end_lsn.is_some() {
            return Err(TrackerError::NotOpen(ticket));
        }
        entry.end_lsn = Some(end_lsn);
        self.advance();
        Ok(())
    }

    /// The sink acknowledged one record of transaction `ticket`.
    pub fn acknowledged(&mut self, ticket: u64) -> Result<(), TrackerError> {
        if self.is_stale(ticket) {
            self.stale_acks += 1;
            return Ok(());
        }
        let entry = self.entry(ticket)?;
        entry.pending = entry
            .pending
            .checked_sub(1)
            .ok_or(TrackerError::TooManyAcks(ticket))?;
        self.advance();
        Ok(())
    }

    /// The server says it has sent us everything before `server_wal_end` (a keepalive) and no
    /// transaction is open: once every record sent before now is acknowledged, that position
    /// is safe to confirm too. This keeps an idle slot, or one busy only with uncaptured
    /// tables, from pinning WAL. The position queues behind what is in flight, so it can never
    /// overtake an unacknowledged record.
    pub fn idle(&mut self, server_wal_end: Lsn) {
        match self.in_flight.back_mut() {
            None => {
                self.confirmed = self.confirmed.max(server_wal_end);
                return;
            }
            // An open transaction: its commit (later) decides.
            Some(back) if back.end_lsn.is_none() => return,
            // Nothing of its own pending: it may as well wait for the later position.
            Some(back) if back.pending == 0 => {
                back.end_lsn = back.end_lsn.max(Some(server_wal_end))
            }
            Some(_) => self.in_flight.push_back(InFlight {
                end_lsn: Some(server_wal_end),
                pending: 0,
            }),
        }
        self.advance();
    }

    fn advance(&mut self) {
        while let Some(front) = self.in_flight.front() {
            match front.end_lsn {
                Some(end) if front.pending == 0 => {
                    self.confirmed = self.confirmed.max(end);
                    self.in_flight.pop_front();
                    self.first_ticket += 1;
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn confirms_a_transaction_only_after_all_its_records_are_acknowledged() {
        let mut tracker = DeliveryTracker::new(Lsn(100));
        let tx = tracker.begin();
        tracker.sent(tx).unwrap();
        tracker.sent(tx).unwrap();
        tracker.commit(tx, Lsn(200)).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(100));
        tracker.acknowledged(tx).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(100));
        tracker.acknowledged(tx).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(200));
        assert_eq!(tracker.transactions_in_flight(), 0);
    }

    #[test]
    fn a_ticket_is_delivered_once_it_and_everything_before_it_is_acknowledged() {
        let mut tracker = DeliveryTracker::new(Lsn(0));
        let first = tracker.begin();
        tracker.sent(first).unwrap();
        tracker.commit(first, Lsn(10)).unwrap();
        let second = tracker.begin();
        tracker.sent(second).unwrap();
        tracker.commit(second, Lsn(20)).unwrap();
        tracker.acknowledged(second).unwrap();
        assert!(!tracker.is_delivered(first) && !tracker.is_delivered(second));
        tracker.acknowledged(first).unwrap();
        assert!(tracker.is_delivered(first) && tracker.is_delivered(second));
        let third = tracker.begin();
        assert!(!tracker.is_delivered(third), "open");
        tracker.sent(third).unwrap();
        tracker.restart_at(Lsn(10));
        assert!(
            !tracker.is_delivered(third),
            "sent before a restart: resent, not delivered"
        );
    }

    #[test]
    fn a_later_transaction_never_passes_an_earlier_unacknowledged_one() {
        let mut tracker = DeliveryTracker::new(Lsn(0));
        let first = tracker.begin();
        tracker.sent(first).unwrap();
        tracker.commit(first, Lsn(10)).unwrap();
        let second = tracker.begin();
        tracker.sent(second).unwrap();
        tracker.commit(second, Lsn(20)).unwrap();
        tracker.acknowledged(second).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(0));
        tracker.acknowledged(first).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(20));
    }

    #[test]
    fn an_open_transaction_holds_back_even_when_its_records_are_acknowledged() {
        let mut tracker = DeliveryTracker::new(Lsn(0));
        let tx = tracker.begin();
        tracker.sent(tx).unwrap();
        tracker.acknowledged(tx).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(0));
        tracker.idle(Lsn(500));
        assert_eq!(
            tracker.confirmed(),
            Lsn(0),
            "idle must not confirm past an open transaction"
        );
        tracker.commit(tx, Lsn(30)).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(30));
    }

    #[test]
    fn an_empty_transaction_is_confirmed_at_commit_and_idle_moves_forward_only() {
        let mut tracker = DeliveryTracker::new(Lsn(50));
        let tx = tracker.begin();
        tracker.commit(tx, Lsn(60)).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(60));
        tracker.idle(Lsn(40));
        assert_eq!(tracker.confirmed(), Lsn(60));
        tracker.idle(Lsn(90));
        assert_eq!(tracker.confirmed(), Lsn(90));
    }

    #[test]
    fn an_idle_position_waits_behind_records_in_flight() {
        let mut tracker = DeliveryTracker::new(Lsn(0));
        let tx = tracker.begin();
        tracker.sent(tx).unwrap();
        tracker.commit(tx, Lsn(10)).unwrap();
        tracker.idle(Lsn(100));
        assert_eq!(
            tracker.confirmed(),
            Lsn(0),
            "the record of tx is not acknowledged yet"
        );
        let next = tracker.begin();
        tracker.sent(next).unwrap();
        tracker.commit(next, Lsn(120)).unwrap();
        tracker.acknowledged(tx).unwrap();
        assert_eq!(
            tracker.confirmed(),
            Lsn(100),
            "the keepalive position, not past tx 120"
        );
        tracker.acknowledged(next).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(120));
    }

    #[test]
    fn impossible_feedback_is_an_error_not_a_panic() {
        let mut tracker = DeliveryTracker::new(Lsn(0));
        assert_eq!(tracker.acknowledged(3), Err(TrackerError::UnknownTicket(3)));
        let tx = tracker.begin();
        assert_eq!(tracker.acknowledged(tx), Err(TrackerError::TooManyAcks(tx)));
        tracker.commit(tx, Lsn(1)).unwrap();
        assert_eq!(tracker.sent(tx), Err(TrackerError::UnknownTicket(tx)));
    }

    #[test]
    fn late_acknowledgements_from_before_a_restart_confirm_nothing() {
        let mut tracker = DeliveryTracker::new(Lsn(100));
        let old = tracker.begin();
        tracker.sent(old).unwrap();
        tracker.sent(old).unwrap();
        tracker.commit(old, Lsn(200)).unwrap();
        let open = tracker.begin();
        tracker.sent(open).unwrap();
        // The connection is lost; the slot says 0/100 was confirmed (the crash lost nothing more).
        tracker.restart_at(Lsn(100));
        assert_eq!(tracker.records_in_flight(), 0);
        assert_eq!(tracker.transactions_in_flight(), 0);
        // The server resends the transaction; it gets a new ticket.
        let again = tracker.begin();
        assert!(again > open, "tickets keep counting up");
        tracker.sent(again).unwrap();
        tracker.commit(again, Lsn(200)).unwrap();
        // Kafka acknowledges the records sent before the restart: ignored.
        tracker.acknowledged(old).unwrap();
        tracker.acknowledged(old).unwrap();
        tracker.acknowledged(open).unwrap();
        assert!(tracker.is_stale(old) && tracker.is_stale(open) && !tracker.is_stale(again));
        assert_eq!(tracker.stale_acks(), 3);
        assert_eq!(
            tracker.confirmed(),
            Lsn(100),
            "only the resent record's own acknowledgement may confirm it"
        );
        tracker.acknowledged(again).unwrap();
        assert_eq!(tracker.confirmed(), Lsn(200));
        // A crash can put the slot behind what was confirmed: the new session starts there.
        tracker.restart_at(Lsn(150));
        assert_eq!(tracker.confirmed(), Lsn(150));
    }

    proptest! {
        /// For any number of transactions, records per transaction and order of acknowledgements,
        /// the confirmed LSN never goes backwards and never passes an unacknowledged record.
        #[test]
        fn never_confirms_past_an_unacknowledged_record(
            sizes in proptest::collection::vec(0u64..5, 1..20),
            order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..100),
        ) {
            let mut tracker = DeliveryTracker::new(Lsn(0));
            let mut unacked: Vec<(u64, Lsn)> = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let ticket = tracker.begin();
                let end = Lsn((i as u64 + 1) * 100);
                for _ in 0..*size {
                    tracker.sent(ticket).unwrap();
                    unacked.push((ticket, end));
                }
                tracker.commit(ticket, end).unwrap();
            }
            let mut last = tracker.confirmed();
            for pick in order {
                if unacked.is_empty() { break; }
                let (ticket, _) = unacked.remove(pick.index(unacked.len()));
                tracker.acknowledged(ticket).unwrap();
                let now = tracker.confirmed();
                prop_assert!(now >= last);
                for (_, end) in &unacked {
                    prop_assert!(now < *end, "confirmed {now} but a record of the tx ending {end} is unacknowledged");
                }
                last = now;
            }
            if unacked.is_empty() {
                prop_assert_eq!(tracker.confirmed(), Lsn(sizes.len() as u64 * 100));
            }
        }
    }
}
