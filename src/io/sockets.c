/* Listening sockets for --server and --ctrl: TCP (IPv4/IPv6, link-local with an
 * interface) and UnixIO (unlinked first, chmod/chown as configured), backlog 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "instance/log.h"
#include "io/sockets.h"

bool sock_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int sock_listen_tcp(const struct cfg_sock *cs, const char *what)
{
	const char *addr = cs->bindaddr ? cs->bindaddr : "127.0.0.1";
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	socklen_t slen;
	int fd, one = 1, r;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) {
			log_printf("Could not parse the bind address '%s'\n", addr);
			return -EINVAL;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)cs->port);
		if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
			if (!cs->ifname) {
				log_printf("Missing interface name for link local address\n");
				return -EINVAL;
			}
			s6->sin6_scope_id = if_nametoindex(cs->ifname);
			if (!s6->sin6_scope_id) {
				log_printf("Unknown network interface '%s'\n", cs->ifname);
				return -EINVAL;
			}
		}
		slen = sizeof(*s6);
	} else {
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) {
			log_printf("Could not parse the bind address '%s'\n", addr);
			return -EINVAL;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)cs->port);
		slen = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 1) < 0) {
		r = -errno;
		log_printf("Could not open TCP %s socket on %s:%d: %s\n", what, addr, cs->port,
			   strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

static int sock_listen_unix(const struct cfg_sock *cs, const char *what)
{
	struct sockaddr_un sa;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cs->path) >= sizeof(sa.sun_path)) {
		log_printf("UnixIO socket path too long: %s\n", cs->path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, cs->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(cs->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		log_printf("Could not bind %s socket to %s: %s\n", what, cs->path, strerror(-r));
		goto fail;
	}
	if (chmod(cs->path, cs->mode) < 0) {
		r = -errno;
		log_printf("Could not chmod %s: %s\n", cs->path, strerror(-r));
		goto fail;
	}
	if ((cs->uid_set || cs->gid_set) &&
	    chown(cs->path, cs->uid_set ? cs->uid : (uid_t)-1, cs->gid_set ? cs->gid : (gid_t)-1) <
		    0) {
		r = -errno;
		log_printf("Could not chown %s: %s\n", cs->path, strerror(-r));
		goto fail;
	}
	if (listen(fd, 1) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

int sock_listen(const struct cfg_sock *cs, const char *what)
{
	if (cs->type == SOCK_TCP)
		return sock_listen_tcp(cs, what);
	if (cs->type == SOCK_UNIXIO && cs->path)
		return sock_listen_unix(cs, what);
	return -EINVAL;
}
