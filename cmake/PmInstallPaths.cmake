# pm_install_with_paths(FILE <source> DESTINATION <dir> [RENAME <name>] [PROGRAMS])
# Installs a text file (unit, provisioning file) after rewriting the Debian paths it names
# (/usr/sbin, /usr/share/pm-ingestd, /usr/share/doc/pm-ingestd) into this build's install paths,
# so that a `cmake --install` under another prefix installs files that point at each other.
# Component: daemon. The rewritten copy is kept in the build tree (tests verify it).
function(pm_install_with_paths)
  cmake_parse_arguments(ARG "" "FILE;DESTINATION;RENAME" "" ${ARGN})
  get_filename_component(name ${ARG_FILE} NAME)
  if(ARG_RENAME)
    set(name ${ARG_RENAME})
  endif()
  file(READ ${ARG_FILE} text)
  string(REPLACE "/usr/sbin/pm-ingestd" "${CMAKE_INSTALL_FULL_SBINDIR}/pm-ingestd" text "${text}")
  string(REPLACE "/usr/share/doc/pm-ingestd" "${CMAKE_INSTALL_FULL_DOCDIR}" text "${text}")
  string(REPLACE "/usr/share/pm-ingestd" "${CMAKE_INSTALL_FULL_DATADIR}/pm-ingestd" text "${text}")
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${ARG_FILE})
  get_filename_component(rel_dir ${rel} DIRECTORY)
  set(out ${PROJECT_BINARY_DIR}/install-files/${rel_dir}/${name})
  file(WRITE ${out}.tmp "${text}")
  configure_file(${out}.tmp ${out} COPYONLY)  # rewrites only when the content changed
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ARG_FILE})
  install(FILES ${out} DESTINATION ${ARG_DESTINATION} COMPONENT daemon)
endfunction()
