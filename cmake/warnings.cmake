# mproc_warnings: an interface target carrying the project's warning flags.
# MPROC_WERROR turns them into errors (CI sets it).
option(MPROC_WERROR "Treat warnings as errors" OFF)
add_library(mproc_warnings INTERFACE)
target_compile_options(mproc_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
  -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual)
if(MPROC_WERROR)
  target_compile_options(mproc_warnings INTERFACE -Werror)
endif()
