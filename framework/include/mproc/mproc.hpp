// mproc/mproc.hpp — everything of mproc in one include.
#pragma once

#include "mproc/current_process.hpp"
#include "mproc/entry.hpp"
#include "mproc/error.hpp"
#include "mproc/lock.hpp"
#include "mproc/node.hpp"
#include "mproc/pipe.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"
#include "mproc/serialization.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/start_method.hpp"
#include "mproc/subprocess.hpp"
#include "mproc/subprocess_queues.hpp"
#include "mproc/utf8.hpp"
#include "mproc/value.hpp"
#include "mproc/wait.hpp"
