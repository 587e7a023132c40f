#ifndef JOBWIRE_CZEROMQ_SHIM_H
#define JOBWIRE_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
