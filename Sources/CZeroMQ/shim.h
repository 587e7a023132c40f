#ifndef JOBWIRE_CZEROMQ_SHIM_H
#define JOBWIRE_CZEROMQ_SHIM_H
#include <zmq.h>
#ifdef __linux__
// The async bridge wakes its I/O thread with an eventfd; Glibc's module map leaves it out.
#include <sys/eventfd.h>
#endif
#endif
