#pragma once
// SynchronousCommit: whether a batch's COMMIT waits for PostgreSQL to flush its WAL.
// - ServerDefault: the role's or server's synchronous_commit applies (normally on: the commit
//   returns once flushed, and with synchronous standbys once they have it), except that a setting
//   of off is raised to local for each batch: a batch's COMMIT always waits for the primary's own
//   flush, so LogRetention may release its segment once committed (--standby-wait off).
// - Off: each batch sets synchronous_commit = off for its own transaction (as SET LOCAL). Its
//   rows are visible to other sessions when COMMIT returns, before the flush (PostgreSQL flushes
//   within wal_writer_delay); a PostgreSQL crash in between loses the batch, checkpoint included.
//   The daemon's log is the durable copy: LogRetention keeps a segment until the primary's
//   flushed position passes the commits that applied it, and the writer applies again from its
//   checkpoint after a reconnect.
namespace pm {

enum class SynchronousCommit { ServerDefault, Off };

}  // namespace pm
