#pragma once
// BatchPhases: where a committed batch's transaction spent its time, in seconds, in order:
// - begin: everything before its trades (a connection, and any earlier run of the body the
//   database retried);
// - trades: BEGIN, its settings and ordering lock, which travel with the COPY, and the trades (COPY);
// - finish: watermarks, triggers and the checkpoint (or the dead letter), which PostgreSQL runs
//   once the batch before it has ended (batches commit in log order): most of that wait is here;
// - durable: the wait for its events to be durable in the log (the writer starts a batch while
//   the log's fdatasync of its events runs, and commits nothing before it has ended);
// - turn: the rest of the wait for the batch before it, in this process (its outcome);
// - commit: COMMIT.
// They add up to the batch's whole time. Plain value; filled by the lane that ran the batch.

namespace pm {

struct BatchPhases {
  double begin = 0, trades = 0, finish = 0, durable = 0, turn = 0, commit = 0;
};

}  // namespace pm
