#pragma once
// CommitOrder: makes batches that run on different connections commit strictly in their sequence
// order, and makes every batch after a failed one give up instead of committing past the hole.
//
// Contract:
// - Sequence numbers start at `first` and are handed out by the caller, one per batch, in order.
// - await_turn(seq) blocks until batch seq-1 is done; it returns true if every batch before seq
//   committed (seq may now finish and commit), false if one of them did not (seq must roll back).
// - done(seq, committed) reports batch seq's outcome; every seq must be reported exactly once,
//   after its own await_turn (or instead of it, when it failed before reaching it).
// - started(seq) says batch seq's transaction holds its turn lock in PostgreSQL (WriterLanes);
//   predecessor_running(seq) waits until batch seq-1 has started or is done and returns true
//   while it is still running (then batch seq waits for it inside PostgreSQL too).
// - failed(seq) says batch seq failed (before or after its turn lock): later batches learn at once,
//   from await_turn and predecessor_running, that they must roll back, instead of waiting in this
//   process (where PostgreSQL's deadlock detector cannot see them) for seq's turn to come.
// - reset(first) starts a new sequence once no batch is in flight (after a failure was handled).
// - waiting() is how many calls are blocked in await_turn, done or predecessor_running (tests).
// Thread-safe: each lane thread calls await_turn/done for its own batches.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>

namespace pm {

class CommitOrder {
 public:
  explicit CommitOrder(std::uint64_t first = 1) { reset(first); }

  bool await_turn(std::uint64_t seq);
  void done(std::uint64_t seq, bool committed);
  void reset(std::uint64_t first);
  void started(std::uint64_t seq);
  bool predecessor_running(std::uint64_t seq);
  void failed(std::uint64_t seq);
  std::size_t waiting();

 private:
  std::mutex mu_;
  std::condition_variable turn_;
  std::uint64_t next_ = 1;       // the batch whose turn it is
  bool broken_ = false;          // a batch before next_ did not commit
  std::set<std::uint64_t> started_;  // batches at or after next_ whose turn lock is held
  std::uint64_t first_failed_ = UINT64_MAX;  // the lowest batch reported failed since reset
  std::size_t waiting_ = 0;                    // calls inside wait_for_turn
  bool failed_before(std::uint64_t seq) const { return first_failed_ < seq; }
  // turn_.wait(lock, ready), counted in waiting_ while it blocks (the lock is held from the count
  // to the first check of `ready`, so a call that need not wait is never seen counted).
  template <class Ready>
  void wait_for_turn(std::unique_lock<std::mutex>& lock, Ready ready) {
    ++waiting_;
    turn_.wait(lock, ready);
    --waiting_;
  }
};

}  // namespace pm
