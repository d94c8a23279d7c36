# Makes hsgd::hsgd findable with find_package(hsgd CONFIG) from an install tree
# (cmake --install <build> --prefix <p>, then -DCMAKE_PREFIX_PATH=<p>) and from this build tree
# (-Dhsgd_DIR=<build>).

include(CMakePackageConfigHelpers)

# Header-only and ARCH_INDEPENDENT, so the package files go under share/, not lib/.
set(HSGD_CONFIG_DIR ${CMAKE_INSTALL_DATADIR}/cmake/hsgd)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hsgdConfig.cmake.in ${PROJECT_BINARY_DIR}/hsgdConfig.cmake
                              INSTALL_DESTINATION ${HSGD_CONFIG_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hsgdConfigVersion.cmake COMPATIBILITY SameMajorVersion
                                 ARCH_INDEPENDENT)

if(HSGD_INSTALL)
  install(TARGETS hsgd EXPORT hsgdTargets)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hsgd DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.hpp")
  install(EXPORT hsgdTargets NAMESPACE hsgd:: DESTINATION ${HSGD_CONFIG_DIR})
  install(FILES ${PROJECT_BINARY_DIR}/hsgdConfig.cmake ${PROJECT_BINARY_DIR}/hsgdConfigVersion.cmake
          DESTINATION ${HSGD_CONFIG_DIR})
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/hsgd)
  # Build tree: the same export set, with the include directory pointing into the sources.
  export(EXPORT hsgdTargets NAMESPACE hsgd:: FILE ${PROJECT_BINARY_DIR}/hsgdTargets.cmake)
else()
  # No export set without install rules; the build tree stays usable all the same.
  export(TARGETS hsgd NAMESPACE hsgd:: FILE ${PROJECT_BINARY_DIR}/hsgdTargets.cmake)
endif()
