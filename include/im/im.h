/*
 * im/im.h - the whole public SDK of the im plugin ABI in one include.
 * See each header for its contract.
 */
#ifndef IM_IM_H
#define IM_IM_H

#include "types.h"
#include "config.h"
#include "http.h"
#include "host.h"
#include "plugin.h"
#include "connector.h"
#include "formatter.h"
#include "command.h"

#endif
