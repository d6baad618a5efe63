#pragma once
// ReleaseHeldCommits: for a test that holds a server's commits (PgCluster::hold_commits) and
// black-holes its port (PrivateNetwork::black_hole): on destruction it restores the network and
// releases the commits, whatever failed before, so nothing waiting on them (a replay's future, a
// daemon's writer) waits for ever. Declare it after what waits on them (it is destroyed first). A
// release that fails is a test failure. For one test's thread.
#include <exception>

#include <gtest/gtest.h>

#include "tests/support/pg_cluster.h"
#include "tests/support/private_network.h"

namespace pm::test {

struct ReleaseHeldCommits {
  PrivateNetwork& network;
  PgCluster& server;
  ~ReleaseHeldCommits() {
    try {
      network.restore();
      server.release_commits();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "releasing the held commits failed: " << e.what();
    }
  }
};

}  // namespace pm::test
