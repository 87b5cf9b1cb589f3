/* drover: the whole public API. See docs/API.md. */
#ifndef DROVER_DROVER_H
#define DROVER_DROVER_H

#include "drover/error.h"
#include "drover/event.h"
#include "drover/handle.h"
#include "drover/node.h"
#include "drover/placement.h"
#include "drover/pool.h"
#include "drover/process.h"
#include "drover/queue.h"
#include "drover/shared.h"
#include "drover/sync.h"
#include "drover/task.h"

#define DROVER_VERSION "0.1.0"

#endif
