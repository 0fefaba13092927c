# Run when installing (cmake/Install.cmake's install(CODE)): writes the files that name
# installed paths for the prefix being installed to. Under the prefix /usr (the .deb)
# the configuration goes to /etc and the unit to /lib/systemd/system, as Debian 12 has
# them; under any other prefix both stay in it (PREFIX/etc, PREFIX/lib/systemd/system).
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(sysconf_dir "/etc")
  set(unit_dir "/lib/systemd/system")
else()
  set(sysconf_dir "${prefix}/etc")
  set(unit_dir "${prefix}/lib/systemd/system")
endif()
set(URINGEST_PREFIX "${prefix}")
set(URINGEST_BIN_DIR "${prefix}/${URINGEST_BINDIR}")
set(URINGEST_DOC_DIR "${prefix}/${URINGEST_DOCDIR}")
set(URINGEST_CONF_FILE "${sysconf_dir}/uringest/uringestd.conf")

# Writes packaging/TEMPLATE (configured if it ends in .in) as DIR/NAME.
function(uringest_install_file template dir name)
  set(out "$ENV{DESTDIR}${dir}/${name}")
  message(STATUS "Installing: ${out}")
  if(template MATCHES "\\.in$")
    configure_file("${URINGEST_SOURCE_DIR}/packaging/${template}" "${out}" @ONLY
                   NO_SOURCE_PERMISSIONS)
  else()
    configure_file("${URINGEST_SOURCE_DIR}/packaging/${template}" "${out}" COPYONLY
                   NO_SOURCE_PERMISSIONS)
  endif()
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${out}")
  set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
endfunction()

uringest_install_file(uringestd.service.in "${unit_dir}" uringestd.service)
uringest_install_file(uringest-ring.pc.in "${prefix}/${URINGEST_LIBDIR}/pkgconfig"
                      uringest-ring.pc)
# An edited configuration file is kept (dpkg asks, as it does for any conffile).
if(EXISTS "$ENV{DESTDIR}${URINGEST_CONF_FILE}")
  file(READ "$ENV{DESTDIR}${URINGEST_CONF_FILE}" installed)
  file(READ "${URINGEST_SOURCE_DIR}/packaging/uringestd.conf" shipped)
  if(NOT installed STREQUAL shipped)
    message(STATUS "Kept (edited): $ENV{DESTDIR}${URINGEST_CONF_FILE}")
    return()
  endif()
endif()
uringest_install_file(uringestd.conf "${sysconf_dir}/uringest" uringestd.conf)
