# Run by the build (cmake -P, target "cpanel" of CMakeLists.txt), every
# build: copies the panel's own files from SRC (cpanel/ of the source tree)
# to DST (build/cpanel/) and the locked third-party dist files from
# SRC/node_modules into DST/vendor/<package>-<version>/, then writes
# DST/vendor.json naming them for the app. Only copies what changed.
# docs/cpanel.md "How it is served".
file(GLOB app RELATIVE "${SRC}" "${SRC}/*.html" "${SRC}/*.js" "${SRC}/*.css" "${SRC}/*.svg")
file(MAKE_DIRECTORY "${DST}/vendor")
foreach(f ${app})
  configure_file("${SRC}/${f}" "${DST}/${f}" COPYONLY)
endforeach()

set(manifest "{")
set(pkg "${SRC}/node_modules/hls.js")
if(EXISTS "${pkg}/package.json" AND EXISTS "${pkg}/dist/hls.min.mjs")
  file(READ "${pkg}/package.json" pj)
  string(JSON ver GET "${pj}" version)
  set(dir "vendor/hls.js-${ver}")
  file(MAKE_DIRECTORY "${DST}/${dir}")
  configure_file("${pkg}/dist/hls.min.mjs" "${DST}/${dir}/hls.min.mjs" COPYONLY)
  if(EXISTS "${pkg}/LICENSE")
    configure_file("${pkg}/LICENSE" "${DST}/${dir}/LICENSE.txt" COPYONLY)
  endif()
  string(APPEND manifest "\"hls\":\"${dir}/hls.min.mjs\"")
else()
  message(WARNING "cpanel: ${SRC}/node_modules/hls.js is missing: the panel is served "
          "without its video player. Run `npm ci` in cpanel/ and build again.")
endif()
string(APPEND manifest "}\n")
set(old "")
if(EXISTS "${DST}/vendor.json")
  file(READ "${DST}/vendor.json" old)
endif()
if(NOT old STREQUAL manifest)
  file(WRITE "${DST}/vendor.json" "${manifest}")
endif()
