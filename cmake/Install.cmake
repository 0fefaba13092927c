# Installing (issue 15): `cmake --install BUILD [--prefix DIR]` puts the programs in bin/,
# liburingest-ring.so (the C API) and its pkg-config file in lib/, uringest_ring.h in
# include/, the systemd unit, the configuration file and the documentation; cpack makes a
# .deb of the same (./uringest.sh package). Nothing of the tests or benchmarks.
include(GNUInstallDirs)

install(TARGETS uringestd uringest-cat uringest-stat uringest-load uringest-record uringest-push
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS uringest-ring LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# uringest_ring.h includes only <stddef.h> and <stdint.h>.
install(FILES ringbuf/uringest_ring.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES README.md ringbuf/FORMAT.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The unit, the configuration file and the .pc name installed paths, which depend on the
# prefix given when installing (--prefix, or the .deb's /usr), so they are written then.
install(CODE "
  set(URINGEST_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(URINGEST_VERSION \"${PROJECT_VERSION}\")
  set(URINGEST_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(URINGEST_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(URINGEST_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(URINGEST_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/InstallConfigured.cmake\")")

# The .deb. Its Depends are what dpkg-shlibdeps finds the programs and the library need,
# plus adduser (postinst) and procps (the unit's /bin/kill).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME uringest)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "uringest developers <uringest@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "RTMP ingest server on io_uring with a shared-memory frame ring")
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "uringestd takes live streams from RTMP and RTMPS publishers (OBS, ffmpeg, hardware\n"
  "encoders) and writes every frame into a shared-memory ring that any number of\n"
  "consumers read: uringest-cat, -stat, -record, -push, or a program of yours linked\n"
  "with liburingest-ring (pkg-config uringest-ring). uringestd.service runs it as user\n"
  "uringest; the package starts nothing by itself.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
# postinst creates the user 'uringest' and starts nothing; prerm stops the service on
# removal; postrm forgets it. The configuration file is a conffile; triggers runs
# ldconfig for liburingest-ring.so.0.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "")
foreach(file conffiles triggers postinst prerm postrm)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/packaging/debian/${file}")
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Installed as `cmake --install --prefix /usr` into a staging DESTDIR, so that
# InstallConfigured.cmake sees /usr and puts the configuration in /etc.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
# cpack's "preinstall" would build all first, the tests included: ./uringest.sh package
# builds what it packs, and cmake --install never builds.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
include(CPack)
