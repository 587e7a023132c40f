#ifndef JOBWIRE_SPAWN_H
#define JOBWIRE_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated) by fork and execve.
///
/// The child runs in a process group of its own (its pid is the group id), with every signal at its
/// default disposition and none blocked, standard input from /dev/null, standard output and error on
/// `stdout_fd` and `stderr_fd`, in `directory` when it is not NULL. On Linux, a non-zero
/// `death_signal` is sent to the child when the thread that called this ends (PR_SET_PDEATHSIG); the
/// program it execs keeps that setting.
///
/// Returns the child's pid once it has exec'd, or minus the errno of the step that failed (the child
/// is then reaped).
pid_t jobwire_spawn(
    const char *path, char *const argv[], char *const envp[], const char *directory, int stdout_fd,
    int stderr_fd, int death_signal);

/// A pipe whose two ends are close-on-exec from the start (`pipe2`), so that a child another thread
/// starts at the same moment cannot inherit them. Returns 0, or -errno.
int jobwire_pipe(int fds[2]);

#endif
