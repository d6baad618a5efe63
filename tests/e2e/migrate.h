#pragma once
// migrate(url): the production schema on a test's own server (PgCluster), as the daemon expects it.
#include <string>

#include "repos/database.h"
#include "repos/migrator.h"

namespace pm::test {

inline void migrate(const std::string& url) {
  DatabaseConfig config;
  config.url = url;
  Database db(config);
  Migrator(db).migrate();
}

}  // namespace pm::test
