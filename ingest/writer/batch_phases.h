#pragma once
// BatchPhases: where a committed batch's transaction spent its time, in seconds, in order:
// - begin: everything before its trades (a connection, BEGIN, and any earlier run of the body the
//   database retried);
// - trades: its settings and ordering lock, which travel with the COPY, and the trades (COPY);
// - turn: waiting for the batch before it to commit (batches commit in log order);
// - finish: watermarks, triggers and the checkpoint (or the dead letter);
// - commit: COMMIT.
// They add up to the batch's whole time. Plain value; filled by the lane that ran the batch.

namespace pm {

struct BatchPhases {
  double begin = 0, trades = 0, turn = 0, finish = 0, commit = 0;
};

}  // namespace pm
