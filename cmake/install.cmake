# `cmake --install` installs headers, libraries and a package so that consumers can write
# find_package(mproc) and link mproc::mproc / mproc::actors.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)
install(DIRECTORY framework/include/mproc actors/include/mproc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mproc-node RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS mproc mproc_actor mproc_cluster mproc_actors EXPORT mproc-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mproc-targets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR})
configure_package_config_file(cmake/mproc-config.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/mproc-config.cmake
  INSTALL_DESTINATION ${MPROC_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mproc-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mproc-config.cmake ${CMAKE_CURRENT_BINARY_DIR}/mproc-config-version.cmake
  cmake/FindCAF.cmake DESTINATION ${MPROC_CMAKE_DIR})
