#define _GNU_SOURCE
#include "jobwire_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

/// Makes `fd` the child's `target` descriptor, open across exec.
static int move_fd(int fd, int target) {
    if (fd == target) {
        int flags = fcntl(fd, F_GETFD);
        return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

pid_t jobwire_spawn(
    const char *path, char *const argv[], char *const envp[], const char *directory, int stdout_fd,
    int stderr_fd, int death_signal) {
    // The child writes the errno of a failed step here; exec closes it, so end of file means it ran.
    int report[2];
    int made = jobwire_pipe(report);
    if (made != 0) return made;
    pid_t parent = getpid();
    // No signal handler of the parent may run in the child before it resets them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = fork();
    if (pid == 0) {
        // Only async-signal-safe calls from here on: the parent has other threads.
        int error = 0;
        if (setpgid(0, 0) != 0) goto fail;
#ifdef __linux__
        if (death_signal != 0) {
            if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) goto fail;
            // The parent may have ended before the line above.
            if (getppid() != parent) _exit(127);
        }
#else
        (void)parent;
        (void)death_signal;
#endif
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        for (int signal = 1; signal < NSIG; signal++) {
            if (signal != SIGKILL && signal != SIGSTOP) (void)sigaction(signal, &dfl, NULL);
        }
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || move_fd(null, 0) != 0) goto fail;
        if (move_fd(stdout_fd, 1) != 0 || move_fd(stderr_fd, 2) != 0) goto fail;
        if (directory != NULL && chdir(directory) != 0) goto fail;
#if defined(__linux__) && defined(SYS_close_range)
        // Descriptors this process inherited without close-on-exec stay out of the child (Linux 5.11+).
        (void)syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
#endif
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
    fail:
        error = errno;
        (void)!write(report[1], &error, sizeof error);
        _exit(127);
    }
    int fork_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -fork_error;
    }
    int error = 0;
    ssize_t count;
    do {
        count = read(report[0], &error, sizeof error);
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof error) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -(error == 0 ? EIO : error);
    }
    return pid;
}

int jobwire_pipe(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
#else
    if (pipe(fds) != 0) return -errno;
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}
