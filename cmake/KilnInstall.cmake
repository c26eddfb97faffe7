# Installing Kiln: `cmake --install build --prefix PREFIX` puts the public headers under include/kiln/,
# libkiln, the kiln program, the plugin SDK, a CMake package (find_package(kiln) -> kiln::kiln and
# kiln_add_plugin) and a pkg-config file (kiln.pc). `cpack -G DEB` (in the build folder) makes a Debian
# package of the same install.
#
# Note [One ABI] reaches users: kiln::kiln carries XTENSOR_USE_XSIMD, -march=native (when Kiln was built
# with it) and the GCC 12 SLP workaround as usage requirements, so a user's code is compiled as Kiln was.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KILN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/kiln")
set(KILN_INSTALL_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}/kiln")

# Public headers: the library's folders, less what only its .cpp files include (xtensor and Boost.Graph
# stay inside the library).
set(KILN_PRIVATE_HEADERS tensor/xt.hpp tensor/runs.hpp tensor/dispatch.hpp ops/elementwise.hpp ops/op_checks.hpp
    autograd/graph.hpp plugins/host.hpp plugins/builtin/builtin.hpp)
foreach(dir tensor io autograd ops optim plugins layers fusion sequence seq2seq)
  file(GLOB headers RELATIVE "${PROJECT_SOURCE_DIR}" "${PROJECT_SOURCE_DIR}/${dir}/*.hpp")
  list(REMOVE_ITEM headers ${KILN_PRIVATE_HEADERS})
  install(FILES ${headers} DESTINATION "${KILN_INSTALL_INCLUDEDIR}/${dir}" COMPONENT dev)
endforeach()
install(FILES include/kiln/kiln.hpp DESTINATION "${KILN_INSTALL_INCLUDEDIR}" COMPONENT dev)
# The plugin SDK: kiln/plugin.h and the header-only skeleton, as a plugin includes them.
install(DIRECTORY plugins/sdk/kiln/ DESTINATION "${KILN_INSTALL_INCLUDEDIR}" COMPONENT dev)

# Usage requirements of the installed library (inside the tree they are set for every target already).
target_compile_definitions(kiln INTERFACE $<INSTALL_INTERFACE:XTENSOR_USE_XSIMD>)
if(KILN_NATIVE)
  target_compile_options(kiln INTERFACE $<INSTALL_INTERFACE:-march=native>)
endif()
target_compile_options(kiln INTERFACE
  $<INSTALL_INTERFACE:$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-fno-tree-slp-vectorize>>)
target_compile_features(kiln INTERFACE cxx_std_17)
target_include_directories(kiln INTERFACE $<INSTALL_INTERFACE:${KILN_INSTALL_INCLUDEDIR}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(kiln PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
                                      EXPORT_NAME kiln)

install(TARGETS kiln EXPORT kilnTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT dev)
install(TARGETS kiln_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
set_target_properties(kiln_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS kiln_mgu LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}/kiln/plugins" COMPONENT runtime)
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION "${KILN_INSTALL_CMAKEDIR}" COMPONENT dev)

set(KILN_CONFIG_NATIVE ${KILN_NATIVE})
get_target_property(KILN_LIBRARY_TYPE kiln TYPE)
configure_package_config_file(cmake/kilnConfig.cmake.in "${PROJECT_BINARY_DIR}/kilnConfig.cmake"
  INSTALL_DESTINATION "${KILN_INSTALL_CMAKEDIR}" PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake" COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/kilnConfig.cmake" "${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake" cmake/KilnPlugin.cmake
  DESTINATION "${KILN_INSTALL_CMAKEDIR}" COMPONENT dev)

# pkg-config, for builds without CMake: g++ my.cpp $(pkg-config --cflags --libs kiln)
set(KILN_PC_CFLAGS "-DXTENSOR_USE_XSIMD")
if(KILN_NATIVE)
  string(APPEND KILN_PC_CFLAGS " -march=native")
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  string(APPEND KILN_PC_CFLAGS " -fno-tree-slp-vectorize")
endif()
configure_file(cmake/kiln.pc.in "${PROJECT_BINARY_DIR}/kiln.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/kiln.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT dev)

# A Debian package of the install: cpack -G DEB (in the build folder).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kiln)
set(CPACK_PACKAGE_VENDOR "Kiln")
set(CPACK_PACKAGE_CONTACT "Kiln developers <kiln@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Sequence models on a tape-based autograd, with fused kernels as plugins")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libopenblas0-pthread | libopenblas0, libfmt-dev, libstdc++6")  # fmt-dev: Kiln's headers use fmt
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
