# Generates a C++ source holding every seed/NN_*.sql file as a string, in name order, so that the
# binaries carry their migrations. Run at build time: cmake -DSEED_DIR=.. -DOUTPUT=.. -P embed_sql.cmake
file(GLOB files RELATIVE "${SEED_DIR}" "${SEED_DIR}/[0-9]*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  file(READ "${SEED_DIR}/${f}" content)
  string(APPEND body "    {\"${f}\", R\"pmsql(${content})pmsql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from seed/*.sql by cmake/embed_sql.cmake. Do not edit.\n#include \"repos/migrator.h\"\n\nnamespace pm {\n\nconst std::vector<Migration>& bundled_migrations() {\n  static const std::vector<Migration> migrations = {\n${body}  };\n  return migrations;\n}\n\n}  // namespace pm\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
