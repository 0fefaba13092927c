# Finds every dependency from its Debian 12 package. A missing one stops configure
# with the name of the package that provides it.

find_package(PkgConfig QUIET)

macro(uringest_require found package what)
  if(NOT ${found})
    message(FATAL_ERROR "uringest needs ${what}: install the Debian package '${package}' "
                        "(apt-get install ${package}), or run ./uringest.sh, which installs it.")
  endif()
endmacro()

uringest_require(PkgConfig_FOUND pkg-config "pkg-config")

find_package(absl CONFIG QUIET)
uringest_require(absl_FOUND libabsl-dev "Abseil (20220623)")

find_package(OpenSSL QUIET)
uringest_require(OPENSSL_FOUND libssl-dev "OpenSSL's libcrypto")

pkg_check_modules(LIBURING QUIET IMPORTED_TARGET liburing)
uringest_require(LIBURING_FOUND liburing-dev "liburing")

pkg_check_modules(MICROHTTPD QUIET IMPORTED_TARGET libmicrohttpd)
uringest_require(MICROHTTPD_FOUND libmicrohttpd-dev "GNU libmicrohttpd (the HTTP control listener)")

find_package(mimalloc CONFIG QUIET)
uringest_require(mimalloc_FOUND libmimalloc-dev "mimalloc")

find_package(spdlog CONFIG QUIET)
uringest_require(spdlog_FOUND libspdlog-dev "spdlog")

find_package(CLI11 CONFIG QUIET)
uringest_require(CLI11_FOUND libcli11-dev "CLI11 (command line flags)")

if(URINGEST_BUILD_TESTS)
  find_package(GTest CONFIG QUIET)
  uringest_require(GTest_FOUND "libgtest-dev libgmock-dev" "GoogleTest and GoogleMock")
endif()

if(URINGEST_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG QUIET)
  uringest_require(benchmark_FOUND libbenchmark-dev "Google Benchmark")
endif()
