# MPROC_SANITIZE: "" (off), "address" (ASan + UBSan) or "thread" (TSan); applies to everything.
set(MPROC_SANITIZE "" CACHE STRING "Sanitizer build: address (ASan+UBSan) or thread (TSan)")
if(MPROC_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(MPROC_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  # Boost.Asio 1.74 brackets each handler it runs with std::atomic_thread_fence (its
  # std_fenced_block), which TSan does not model (g++ 12 says so: -Wtsan, an error under
  # MPROC_WERROR). The fences add nothing here: a handler reaches the thread that runs it through
  # the io_context's mutex-guarded queues, an ordering TSan does see. So the TSan build uses
  # Asio's own switch for fence-free invocation, for every file at once (Asio's templates must be
  # the same in every translation unit), and the warning stays on for any other fence.
  add_compile_definitions(BOOST_ASIO_DISABLE_FENCED_BLOCK)
  add_link_options(-fsanitize=thread)
elseif(NOT MPROC_SANITIZE STREQUAL "")
  message(FATAL_ERROR "MPROC_SANITIZE must be empty, address or thread")
endif()
