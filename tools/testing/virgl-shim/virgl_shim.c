// SPDX-License-Identifier: GPL-2.0
/*
 * A thin LD_PRELOAD shim over the host's real libvirglrenderer.so.1, loaded
 * into QEMU by the rig. It lets a guest test choose, per blob resource, the
 * map_info the host reports and whether mapping the blob fails, and it counts
 * the host resources created and released, so that the rig can fail a run
 * that leaks them.
 *
 * A test selects the behaviour through the blob_id it creates the blob with:
 *
 *   bits 31..16  0x5653 ('VS'): the shim handles this blob
 *   bits 15..9   free for the test (to keep blob ids unique)
 *   bit  8       1: virgl_renderer_resource_map() fails (-EINVAL)
 *   bits 7..0    the map_info to report (0..255, e.g. 0x13)
 *
 * Other blobs get the real library's answers, unless a forced map_info is
 * set through the control file (below). Everything else is passed through
 * unchanged.
 *
 * QEMU's GL display module loads the library RTLD_LOCAL, so the real
 * functions are found through a handle to the library (RTLD_NOLOAD), not
 * through RTLD_NEXT.
 *
 * With VGPU_SHIM_REPORT=<file>, the shim replaces the file (atomically, by
 * rename) with one line of what it saw whenever that changes:
 *
 *   created N released M reset R live L unknown U
 *   ctx-created N ctx-destroyed M ctx-live L ctx-unknown U
 *   res-ids ID,... res-kinds ID:KIND,... ctxs ID:CAPSET:NAME,...
 *   caps ID:VERSION:SIZE:FNV:FILLS,...
 *
 * (one line, "-" for an empty list, at most 64 handles then ",+N"): resources and contexts created and
 * released, "unknown" counting releases of what was not live (released twice,
 * or never created); the live resource handles, with what each is (KIND: c
 * classic, b blob, then a once backing was attached, m once mapped, u once
 * unmapped), and context handles, each context with
 * the capset it was created for and its debug name; and for each capset the
 * guest fetched, the size and FNV-1a 64 hash of the host's answer and how
 * many times the host was asked. The rig reads the file when the guest asks
 * (a line on the serial console) and at the end of a boot. The line ends with
 * the fence stall's state (below):
 *
 *   stall off|on fences-stalled N fences-held H mapinfo off|0xNN
 *
 * N: the fences created under a stall so far; H: the timelines whose
 * retirement the shim withholds now.
 *
 * Fence stalls. QEMU's virgl device answers a command that carries
 * VIRTIO_GPU_FLAG_FENCE only when virglrenderer reports the fence retired
 * (the write_fence callback for a fence of no context, write_context_fence
 * for a context's ring), from virgl_renderer_poll() on QEMU's main loop. The
 * shim interposes the callbacks (virgl_renderer_init) and can withhold the
 * retirement of every fence created from a given moment on, so that the
 * guest sees a host that is slow or has stopped answering, without blocking
 * QEMU. With VGPU_SHIM_CONTROL=<file>, the shim reads the file whenever it
 * changed (it checks at each fence creation, retirement and poll); the file
 * holds one line, a sequence number and a command:
 *
 *   SEQ stall all forever|ms=T           every fence
 *   SEQ stall name=NAME [ring=R] forever|ms=T
 *                                        the fences of the contexts named NAME
 *                                        (as the report shows names), on ring R
 *   SEQ release                          end the stall
 *   SEQ mapinfo VALUE                    every blob created from now on with
 *                                        a non-zero blob_id (Mesa's: venus's
 *                                        VkDeviceMemory, virgl's storage
 *                                        buffers; not venus's own rings, made
 *                                        with blob_id 0) reports map_info
 *                                        VALUE (0..255, decimal or 0x hex)
 *   SEQ mapinfo off                      blobs made from now on get the real
 *                                        library's answer again
 *
 *   SEQ fail OP [res=ID] [name=NAME] [count=N|always]
 *                                        the next N (default 1) calls of host
 *                                        operation OP that match fail without
 *                                        reaching virglrenderer (below)
 *   SEQ delay OP [res=ID] [name=NAME] [count=N|always] ms=T
 *                                        the next N matching calls of OP take
 *                                        T more milliseconds (at most 10000),
 *                                        as a slow host library's do
 *   SEQ fail off                         ends a fail or delay
 *   SEQ reset                            the device reports DEVICE_NEEDS_RESET,
 *                                        from the next virgl_renderer_poll()
 *                                        on QEMU's main loop: the shim calls
 *                                        QEMU's virtio_error() on the device,
 *                                        as QEMU does when it finds the device
 *                                        in a state it cannot go on from (the
 *                                        device stops answering until the
 *                                        guest resets it)
 *
 * A stall applies to the fences created after it was read; what retires of
 * them is withheld (what retires before them is passed on), and delivered
 * from the next virgl_renderer_poll() once the stall ends (release, or T
 * milliseconds after it was read). A device reset drops what is withheld; a
 * stall outlives it.
 *
 * Host faults. OP is one of the virglrenderer calls QEMU makes for the
 * guest's commands: create (virgl_renderer_resource_create for
 * RESOURCE_CREATE_2D/3D, _create_blob for RESOURCE_CREATE_BLOB), ctx
 * (context_create*, CTX_CREATE), attach (resource_attach_iov,
 * RESOURCE_ATTACH_BACKING), submit (submit_cmd, SUBMIT_3D), map
 * (resource_map, RESOURCE_MAP_BLOB), unmap (resource_unmap,
 * RESOURCE_UNMAP_BLOB) and unref (resource_unref, RESOURCE_UNREF; it
 * returns nothing, so it can only be delayed). res= matches the resource
 * handle, name= the debug name of the context the call is for (a blob's or a
 * submit's context, or the context being created). A failed call returns
 * -EINVAL; what QEMU makes of it is QEMU's: it answers the guest an error
 * for a blob creation, a map and an unmap, and goes on silently for the
 * others (it does not check those calls' results). A resource or context
 * whose creation failed here, or that the library refused (a classic
 * resource with arguments virglrenderer rejects), is not live for the
 * counts, and its later release by QEMU (which kept it) is not counted as
 * unknown. The report ends with
 *
 *   faults N delays D fault off|OP
 *
 * N, D: calls failed and delayed so far.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SHIM_MAGIC 0x5653u
#define SHIM_FAIL_MAP (1u << 8)

/* From virglrenderer.h (1.x). */
struct virgl_renderer_resource_create_blob_args {
	uint32_t res_handle;
	uint32_t ctx_id;
	uint32_t blob_mem;
	uint32_t blob_flags;
	uint64_t blob_id;
	uint64_t size;
	const struct iovec *iovecs;
	uint32_t num_iovs;
};

struct virgl_renderer_resource_create_args;

#define MAX_TRACKED 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint32_t res_handle;
	uint32_t behaviour; /* low 16 bits of the blob id */
} tracked[MAX_TRACKED];
static unsigned long created, released, resets;
/* Releases of resources that were not live: double unrefs, or unrefs of nothing. */
static unsigned long unknown;
/* Handles of live resources, to count releases of known resources only. */
static uint32_t live[MAX_TRACKED];
/*
 * What each live resource is, for a leak's report: 'c' classic, 'b' blob, then 'a' once
 * backing was attached, 'm' while mapped, 'u' once unmapped (at most 4 letters).
 */
static char live_kind[MAX_TRACKED][5];
static unsigned int nlive;

/* Live host contexts the shim can tell apart (the guest fuzzer's forks keep hundreds). */
#define MAX_CONTEXTS 4096
#define NAME_LEN 32
static unsigned long ctx_created, ctx_destroyed, ctx_unknown;
static struct {
	uint32_t id;
	uint32_t capset;
	char name[NAME_LEN];
} contexts[MAX_CONTEXTS];
static unsigned int ncontexts;

#define MAX_CAPSETS 16
static struct {
	uint32_t id, version, size;
	uint64_t fnv;
	unsigned long fills;
} capsets[MAX_CAPSETS];
static unsigned int ncapsets;

static void *real(const char *name)
{
	static void *lib;
	void *f;

	if (!lib)
		lib = dlopen("libvirglrenderer.so.1", RTLD_NOLOAD | RTLD_LAZY);
	if (!lib)
		lib = dlopen("libvirglrenderer.so.1", RTLD_LAZY);
	f = lib ? dlsym(lib, name) : NULL;
	if (!f) {
		fprintf(stderr, "virgl-shim: %s not found: %s\n", name, dlerror());
		abort();
	}
	return f;
}

#define REAL(ret, name, ...)                                              \
	static ret (*real_##name)(__VA_ARGS__);                           \
	if (!real_##name)                                                 \
		real_##name = (ret (*)(__VA_ARGS__))real(#name)

/* The fence stall (see the top of the file). */
#define MAX_HELD 64
static struct {
	int active;
	int all;		/* every fence; else the contexts named `name` */
	char name[NAME_LEN];
	int ring;		/* -1: every ring */
	uint64_t until_ms;	/* 0: forever */
	uint64_t from;		/* the first fence id created under the stall; 0: none yet */
	unsigned long fences;	/* fences created under a stall, ever */
	int release;		/* deliver what is held at the next poll */
	/* Withheld retirements: the fence of no context, and per context and ring. */
	int held0;
	uint32_t held0_fence;
	unsigned int nheld;
	struct {
		uint32_t ctx_id, ring_idx;
		uint64_t fence;
	} held[MAX_HELD];
	/* The control file as last read. */
	unsigned long seq;
	ino_t ino;
	struct timespec mtime;
} stall;

/* The control file's forced map_info for the blobs created while it is set. */
static struct {
	int active;
	uint32_t value;
} force_map;

/* Host faults (see the top of the file). */
enum { OP_CREATE, OP_CTX, OP_ATTACH, OP_SUBMIT, OP_MAP, OP_UNMAP, OP_UNREF, NOPS };
static const char *const op_names[NOPS] = {
	"create", "ctx", "attach", "submit", "map", "unmap", "unref",
};
#define MAX_GHOSTS MAX_TRACKED
static struct {
	int active;
	int op;
	int delay;		/* 0: fail the call; 1: delay it by ms */
	uint64_t ms;
	int has_res;
	uint32_t res;
	char name[NAME_LEN];
	long count;		/* calls left; -1: always */
	unsigned long failed, delayed;
	/* Resources and contexts whose creation failed here, which QEMU still releases. */
	uint32_t ghost_res[MAX_GHOSTS], ghost_ctx[MAX_GHOSTS];
	unsigned int nghost_res, nghost_ctx;
	/* RESET_PENDING when asked for (a value no stray write is likely to leave). */
	uint32_t reset_pending;
} fault;

#define RESET_PENDING 0x52455354u

static void stall_check_locked(void);

static unsigned int stall_held_count_locked(void)
{
	return stall.nheld + (stall.held0 ? 1 : 0);
}

/* The report lists at most this many handles of each kind (a line the guest reads). */
#define MAX_REPORTED 64

static void report_locked(void)
{
	const char *path = getenv("VGPU_SHIM_REPORT");
	char tmp[4096];
	unsigned int i;
	FILE *f;

	if (!path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "created %lu released %lu reset %lu live %u unknown %lu",
		created, released, resets, nlive, unknown);
	fprintf(f, " ctx-created %lu ctx-destroyed %lu ctx-live %u ctx-unknown %lu",
		ctx_created, ctx_destroyed, ncontexts, ctx_unknown);
	fprintf(f, " res-ids ");
	for (i = 0; i < nlive && i < MAX_REPORTED; i++)
		fprintf(f, "%s%u", i ? "," : "", live[i]);
	if (nlive > MAX_REPORTED)
		fprintf(f, ",+%u", nlive - MAX_REPORTED);
	fprintf(f, "%s res-kinds ", nlive ? "" : "-");
	for (i = 0; i < nlive && i < MAX_REPORTED; i++)
		fprintf(f, "%s%u:%s", i ? "," : "", live[i], live_kind[i]);
	fprintf(f, "%s ctxs ", nlive ? "" : "-");
	for (i = 0; i < ncontexts && i < MAX_REPORTED; i++)
		fprintf(f, "%s%u:%u:%s", i ? "," : "", contexts[i].id, contexts[i].capset,
			contexts[i].name);
	if (ncontexts > MAX_REPORTED)
		fprintf(f, ",+%u", ncontexts - MAX_REPORTED);
	fprintf(f, "%s caps ", ncontexts ? "" : "-");
	for (i = 0; i < ncapsets; i++)
		fprintf(f, "%s%u:%u:%u:%016llx:%lu", i ? "," : "", capsets[i].id,
			capsets[i].version, capsets[i].size,
			(unsigned long long)capsets[i].fnv, capsets[i].fills);
	fprintf(f, "%s", ncapsets ? "" : "-");
	fprintf(f, " stall %s fences-stalled %lu fences-held %u", stall.active ? "on" : "off",
		stall.fences, stall_held_count_locked());
	if (force_map.active)
		fprintf(f, " mapinfo 0x%02x", force_map.value);
	else
		fprintf(f, " mapinfo off");
	fprintf(f, " faults %lu delays %lu fault %s\n", fault.failed, fault.delayed,
		fault.active ? op_names[fault.op] : "off");
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

/*
 * A report from QEMU's start, so that a missing one means the shim was not
 * loaded. Processes QEMU starts inherit LD_PRELOAD (virglrenderer's render
 * server): they must not overwrite QEMU's counters.
 */
__attribute__((constructor)) static void shim_init(void)
{
	if (strncmp(program_invocation_short_name, "qemu-system-", 12))
		return;
	pthread_mutex_lock(&lock);
	report_locked();
	pthread_mutex_unlock(&lock);
}

static void id_add(uint32_t *v, unsigned int *n, uint32_t id)
{
	if (*n < MAX_GHOSTS)
		v[(*n)++] = id;
}

/* Removes `id` from the list; whether it was there. */
static int id_take(uint32_t *v, unsigned int *n, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < *n; i++) {
		if (v[i] == id) {
			v[i] = v[--*n];
			return 1;
		}
	}
	return 0;
}


/* Whether the control file may have changed since it was last read (no lock taken). */
static int control_changed(void)
{
	const char *path = getenv("VGPU_SHIM_CONTROL");
	struct stat st;

	return path && stat(path, &st) == 0 &&
	       (st.st_ino != __atomic_load_n(&stall.ino, __ATOMIC_RELAXED) ||
		st.st_mtim.tv_sec != __atomic_load_n(&stall.mtime.tv_sec, __ATOMIC_RELAXED) ||
		st.st_mtim.tv_nsec != __atomic_load_n(&stall.mtime.tv_nsec, __ATOMIC_RELAXED));
}

/* The debug name of live context `ctx_id`, or NULL. */
static const char *context_name_locked(uint32_t ctx_id)
{
	unsigned int i;

	for (i = 0; i < ncontexts; i++)
		if (contexts[i].id == ctx_id)
			return contexts[i].name;
	return NULL;
}

/*
 * Whether the call of `op` on resource `res` (0: none) for the context named `name` (or, with
 * `name` NULL, the live context `ctx_id`; 0: none) is to fail; a call to be delayed is delayed
 * here, without the lock. Calls made while no fault is set and the control file did not
 * change take no lock: QEMU's main loop makes them for every command, and virglrenderer's
 * fence thread takes the same lock.
 */
static int fault_hit(int op, uint32_t res, uint32_t ctx_id, const char *name)
{
	uint64_t ms = 0;
	int fail = 0;

	if (!__atomic_load_n(&fault.active, __ATOMIC_RELAXED) && !control_changed())
		return 0;
	pthread_mutex_lock(&lock);
	stall_check_locked();
	if (!name && ctx_id && fault.name[0])
		name = context_name_locked(ctx_id);
	if (fault.active && fault.op == op && (!fault.has_res || fault.res == res) &&
	    (!fault.name[0] || (name && !strcmp(name, fault.name)))) {
		if (fault.delay) {
			ms = fault.ms;
			fault.delayed++;
		} else {
			fail = 1;
			fault.failed++;
		}
		if (fault.count > 0 && --fault.count == 0)
			fault.active = 0;
		report_locked();
	}
	pthread_mutex_unlock(&lock);
	if (ms) {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return fail;
}

static void live_add_locked(uint32_t res, char kind)
{
	if (nlive < MAX_TRACKED) {
		live_kind[nlive][0] = kind;
		live_kind[nlive][1] = '\0';
		live[nlive++] = res;
	}
	created++;
	report_locked();
}

/* Adds `what` to what the report says of live resource `res`. */
static void live_note(uint32_t res, char what)
{
	unsigned int i;
	size_t n;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nlive; i++) {
		if (live[i] == res) {
			n = strlen(live_kind[i]);
			if (n < 4 && live_kind[i][n - 1] != what) {
				live_kind[i][n] = what;
				live_kind[i][n + 1] = '\0';
			}
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

static void live_remove_locked(uint32_t res)
{
	unsigned int i;

	for (i = 0; i < nlive; i++) {
		if (live[i] == res) {
			--nlive;
			live[i] = live[nlive];
			memcpy(live_kind[i], live_kind[nlive], sizeof(live_kind[i]));
			released++;
			report_locked();
			return;
		}
	}
	unknown++;
	report_locked();
}

static int behaviour_of(uint32_t res, uint32_t *behaviour)
{
	unsigned int i;
	int found = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i].res_handle == res && res) {
			*behaviour = tracked[i].behaviour;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return found;
}

int virgl_renderer_resource_create_blob(
	const struct virgl_renderer_resource_create_blob_args *args)
{
	REAL(int, virgl_renderer_resource_create_blob,
	     const struct virgl_renderer_resource_create_blob_args *);
	unsigned int i;
	int ret;

	/* QEMU answers the guest an error and keeps nothing of the blob. */
	if (fault_hit(OP_CREATE, args->res_handle, args->ctx_id, NULL))
		return -EINVAL;
	ret = real_virgl_renderer_resource_create_blob(args);
	if (ret)
		return ret;
	pthread_mutex_lock(&lock);
	stall_check_locked();
	live_add_locked(args->res_handle, 'b');
	if ((args->blob_id >> 16) == SHIM_MAGIC || (force_map.active && args->blob_id)) {
		for (i = 0; i < MAX_TRACKED; i++) {
			if (!tracked[i].res_handle) {
				tracked[i].res_handle = args->res_handle;
				tracked[i].behaviour = (args->blob_id >> 16) == SHIM_MAGIC ?
					args->blob_id & 0xffff : force_map.value;
				break;
			}
		}
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

int virgl_renderer_resource_create(struct virgl_renderer_resource_create_args *args,
				   struct iovec *iov, uint32_t num_iovs)
{
	REAL(int, virgl_renderer_resource_create,
	     struct virgl_renderer_resource_create_args *, struct iovec *, uint32_t);
	uint32_t res = *(uint32_t *)args;
	int ret;

	/* QEMU does not check: it keeps the resource, and releases it later. */
	if (fault_hit(OP_CREATE, res, 0, NULL)) {
		pthread_mutex_lock(&lock);
		id_add(fault.ghost_res, &fault.nghost_res, res);
		pthread_mutex_unlock(&lock);
		return -EINVAL;
	}
	ret = real_virgl_renderer_resource_create(args, iov, num_iovs);
	pthread_mutex_lock(&lock);
	if (!ret)
		live_add_locked(res, 'c');
	else
		/* Refused (bad arguments): QEMU releases it all the same, as a failed one. */
		id_add(fault.ghost_res, &fault.nghost_res, res);
	pthread_mutex_unlock(&lock);
	return ret;
}

void virgl_renderer_resource_unref(uint32_t res_handle)
{
	REAL(void, virgl_renderer_resource_unref, uint32_t);
	unsigned int i;

	/* It returns nothing: it can only be delayed. */
	fault_hit(OP_UNREF, res_handle, 0, NULL);
	real_virgl_renderer_resource_unref(res_handle);
	pthread_mutex_lock(&lock);
	if (!id_take(fault.ghost_res, &fault.nghost_res, res_handle))
		live_remove_locked(res_handle);
	for (i = 0; i < MAX_TRACKED; i++)
		if (tracked[i].res_handle == res_handle)
			tracked[i].res_handle = 0;
	pthread_mutex_unlock(&lock);
}

void virgl_renderer_reset(void)
{
	REAL(void, virgl_renderer_reset, void);

	real_virgl_renderer_reset();
	/* The device reset released every resource and context on the host. */
	pthread_mutex_lock(&lock);
	released += nlive;
	nlive = 0;
	ctx_destroyed += ncontexts;
	ncontexts = 0;
	resets++;
	memset(tracked, 0, sizeof(tracked));
	fault.nghost_res = 0;
	fault.nghost_ctx = 0;
	/* The reset dropped every fence QEMU waited for: nothing withheld is delivered. */
	stall.held0 = 0;
	stall.nheld = 0;
	stall.release = 0;
	stall.from = 0;
	report_locked();
	pthread_mutex_unlock(&lock);
}

int virgl_renderer_resource_get_map_info(uint32_t res_handle, uint32_t *map_info)
{
	REAL(int, virgl_renderer_resource_get_map_info, uint32_t, uint32_t *);
	int ret = real_virgl_renderer_resource_get_map_info(res_handle, map_info);
	uint32_t behaviour;

	if (behaviour_of(res_handle, &behaviour)) {
		*map_info = behaviour & 0xff;
		return 0;
	}
	return ret;
}

int virgl_renderer_resource_map(uint32_t res_handle, void **map, uint64_t *out_size)
{
	REAL(int, virgl_renderer_resource_map, uint32_t, void **, uint64_t *);
	uint32_t behaviour;

	if (behaviour_of(res_handle, &behaviour) && (behaviour & SHIM_FAIL_MAP))
		return -EINVAL;
	int ret;

	if (fault_hit(OP_MAP, res_handle, 0, NULL))
		return -EINVAL;
	ret = real_virgl_renderer_resource_map(res_handle, map, out_size);
	if (!ret)
		live_note(res_handle, 'm');
	return ret;
}

/* QEMU answers the guest an error; the blob stays mapped on the host until its unref. */
int virgl_renderer_resource_unmap(uint32_t res_handle)
{
	REAL(int, virgl_renderer_resource_unmap, uint32_t);

	int ret;

	if (fault_hit(OP_UNMAP, res_handle, 0, NULL))
		return -EINVAL;
	ret = real_virgl_renderer_resource_unmap(res_handle);
	if (!ret)
		live_note(res_handle, 'u');
	return ret;
}

/* QEMU does not check: the resource has no backing, the guest is not told. */
int virgl_renderer_resource_attach_iov(int res_handle, struct iovec *iov, int num_iovs)
{
	REAL(int, virgl_renderer_resource_attach_iov, int, struct iovec *, int);

	int ret;

	if (fault_hit(OP_ATTACH, (uint32_t)res_handle, 0, NULL))
		return -EINVAL;
	ret = real_virgl_renderer_resource_attach_iov(res_handle, iov, num_iovs);
	if (!ret)
		live_note((uint32_t)res_handle, 'a');
	return ret;
}

/* QEMU does not check: the commands are dropped, their fence still retires. */
int virgl_renderer_submit_cmd(void *buffer, int ctx_id, int ndw)
{
	REAL(int, virgl_renderer_submit_cmd, void *, int, int);

	if (fault_hit(OP_SUBMIT, 0, (uint32_t)ctx_id, NULL))
		return -EINVAL;
	return real_virgl_renderer_submit_cmd(buffer, ctx_id, ndw);
}

/* A context's debug name as the report shows it: no separators, no blanks. */
static void copy_name(char *dst, const char *name, uint32_t nlen)
{
	uint32_t i, n = 0;

	for (i = 0; name && i < nlen && name[i] && n < NAME_LEN - 1; i++) {
		char c = name[i];

		dst[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ? c : '?';
	}
	dst[n] = '\0';
}

static void context_created(uint32_t id, uint32_t capset, uint32_t nlen, const char *name)
{
	pthread_mutex_lock(&lock);
	ctx_created++;
	if (ncontexts < MAX_CONTEXTS) {
		contexts[ncontexts].id = id;
		contexts[ncontexts].capset = capset;
		copy_name(contexts[ncontexts].name, name, nlen);
		ncontexts++;
	} else {
		/* Its destruction will count as unknown: say why. */
		fprintf(stderr, "virgl-shim: more than %d live contexts: context %u not tracked\n",
			MAX_CONTEXTS, id);
	}
	report_locked();
	pthread_mutex_unlock(&lock);
}

/*
 * virglrenderer implements context_create() by calling its exported
 * context_create_with_flags(), which this shim also interposes: the context
 * is counted once, as QEMU asked for it (capset 0: none given).
 */
static __thread int in_context_create;

int virgl_renderer_context_create(uint32_t handle, uint32_t nlen, const char *name)
{
	REAL(int, virgl_renderer_context_create, uint32_t, uint32_t, const char *);
	char shown[NAME_LEN];
	int ret;

	copy_name(shown, name, nlen);
	/* QEMU does not check: it destroys the context later. */
	if (fault_hit(OP_CTX, 0, 0, shown)) {
		pthread_mutex_lock(&lock);
		id_add(fault.ghost_ctx, &fault.nghost_ctx, handle);
		pthread_mutex_unlock(&lock);
		return -EINVAL;
	}
	in_context_create = 1;
	ret = real_virgl_renderer_context_create(handle, nlen, name);
	in_context_create = 0;
	if (!ret) {
		context_created(handle, 0, nlen, name);
	} else {
		/* Refused: QEMU destroys it all the same, as a failed one. */
		pthread_mutex_lock(&lock);
		id_add(fault.ghost_ctx, &fault.nghost_ctx, handle);
		pthread_mutex_unlock(&lock);
	}
	return ret;
}

/* The low byte of the flags is the capset (VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK). */
int virgl_renderer_context_create_with_flags(uint32_t ctx_id, uint32_t ctx_flags,
					     uint32_t nlen, const char *name)
{
	REAL(int, virgl_renderer_context_create_with_flags, uint32_t, uint32_t, uint32_t,
	     const char *);
	char shown[NAME_LEN];
	int ret;

	copy_name(shown, name, nlen);
	if (!in_context_create && fault_hit(OP_CTX, 0, 0, shown)) {
		pthread_mutex_lock(&lock);
		id_add(fault.ghost_ctx, &fault.nghost_ctx, ctx_id);
		pthread_mutex_unlock(&lock);
		return -EINVAL;
	}
	ret = real_virgl_renderer_context_create_with_flags(ctx_id, ctx_flags, nlen, name);

	if (!ret && !in_context_create) {
		context_created(ctx_id, ctx_flags & 0xff, nlen, name);
	} else if (ret && !in_context_create) {
		/* Refused: QEMU destroys it all the same, as a failed one. */
		pthread_mutex_lock(&lock);
		id_add(fault.ghost_ctx, &fault.nghost_ctx, ctx_id);
		pthread_mutex_unlock(&lock);
	}
	return ret;
}

void virgl_renderer_context_destroy(uint32_t handle)
{
	REAL(void, virgl_renderer_context_destroy, uint32_t);
	unsigned int i;

	real_virgl_renderer_context_destroy(handle);
	pthread_mutex_lock(&lock);
	for (i = 0; i < ncontexts; i++)
		if (contexts[i].id == handle)
			break;
	if (i < ncontexts) {
		contexts[i] = contexts[--ncontexts];
		ctx_destroyed++;
	} else if (!id_take(fault.ghost_ctx, &fault.nghost_ctx, handle)) {
		ctx_unknown++;
	}
	report_locked();
	pthread_mutex_unlock(&lock);
}

/* What the host answers to GET_CAPSET: its size and hash, and how often it was asked. */
void virgl_renderer_fill_caps(uint32_t set, uint32_t version, void *caps)
{
	REAL(void, virgl_renderer_fill_caps, uint32_t, uint32_t, void *);
	REAL(void, virgl_renderer_get_cap_set, uint32_t, uint32_t *, uint32_t *);
	uint32_t max_ver = 0, size = 0, i;
	uint64_t fnv = 0xcbf29ce484222325ull;
	unsigned int n;

	real_virgl_renderer_fill_caps(set, version, caps);
	real_virgl_renderer_get_cap_set(set, &max_ver, &size);
	for (i = 0; caps && i < size; i++)
		fnv = (fnv ^ ((const uint8_t *)caps)[i]) * 0x100000001b3ull;
	pthread_mutex_lock(&lock);
	for (n = 0; n < ncapsets; n++)
		if (capsets[n].id == set && capsets[n].version == version)
			break;
	if (n == ncapsets && ncapsets < MAX_CAPSETS)
		ncapsets++;
	if (n < ncapsets) {
		capsets[n].id = set;
		capsets[n].version = version;
		capsets[n].size = size;
		capsets[n].fnv = fnv;
		capsets[n].fills++;
	}
	report_locked();
	pthread_mutex_unlock(&lock);
}

/*
 * Fence stalls.
 */

/* From virglrenderer.h (1.x), callbacks version 4; QEMU's table has every member. */
struct virgl_renderer_callbacks {
	int version;
	void (*write_fence)(void *cookie, uint32_t fence);
	void *create_gl_context;
	void *destroy_gl_context;
	void *make_current;
	void *get_drm_fd;
	void (*write_context_fence)(void *cookie, uint32_t ctx_id, uint32_t ring_idx,
				    uint64_t fence_id);
	void *get_server_fd;
	void *get_egl_display;
};

static struct virgl_renderer_callbacks shim_cbs;
static void (*qemu_write_fence)(void *cookie, uint32_t fence);
static void (*qemu_write_context_fence)(void *cookie, uint32_t ctx_id, uint32_t ring_idx,
					uint64_t fence_id);
static void *qemu_cookie;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stall_end_locked(void)
{
	stall.active = 0;
	stall.from = 0;
	stall.release = 1;
}

/* Applies one control line ("SEQ stall ..." or "SEQ release"); ignores a malformed one. */
static void stall_apply_locked(char *line)
{
	char *save = NULL, *w = strtok_r(line, " \t\n", &save);
	unsigned long seq;
	int all = 0, ring = -1, forever = 0;
	uint64_t ms = 0;
	char name[NAME_LEN] = "";

	if (!w)
		return;
	seq = strtoul(w, NULL, 10);
	if (seq == stall.seq)
		return;
	stall.seq = seq;
	w = strtok_r(NULL, " \t\n", &save);
	if (!w)
		return;
	if (!strcmp(w, "release")) {
		if (stall.active)
			stall_end_locked();
		report_locked();
		return;
	}
	if (!strcmp(w, "mapinfo")) {
		char *end;
		unsigned long v;

		w = strtok_r(NULL, " \t\n", &save);
		if (!w)
			return;
		if (!strcmp(w, "off")) {
			force_map.active = 0;
		} else {
			v = strtoul(w, &end, 0);
			if (*end || v > 0xff)
				return;
			force_map.active = 1;
			force_map.value = v;
		}
		report_locked();
		return;
	}
	if (!strcmp(w, "reset")) {
		fault.reset_pending = RESET_PENDING;
		report_locked();
		return;
	}
	if (!strcmp(w, "fail") || !strcmp(w, "delay")) {
		int delay = !strcmp(w, "delay"), op = -1, has_res = 0;
		long count = 1;
		uint32_t res = 0;
		int i;

		w = strtok_r(NULL, " \t\n", &save);
		if (!w)
			return;
		if (!strcmp(w, "off")) {
			fault.active = 0;
			report_locked();
			return;
		}
		for (i = 0; i < NOPS; i++)
			if (!strcmp(w, op_names[i]))
				op = i;
		if (op < 0)
			return;
		while ((w = strtok_r(NULL, " \t\n", &save))) {
			if (!strncmp(w, "res=", 4)) {
				has_res = 1;
				res = strtoul(w + 4, NULL, 0);
			} else if (!strncmp(w, "name=", 5)) {
				snprintf(name, sizeof(name), "%s", w + 5);
			} else if (!strcmp(w, "count=always")) {
				count = -1;
			} else if (!strncmp(w, "count=", 6)) {
				count = strtol(w + 6, NULL, 10);
			} else if (!strncmp(w, "ms=", 3)) {
				ms = strtoull(w + 3, NULL, 10);
			} else {
				return;
			}
		}
		if (!count || (delay && (!ms || ms > 10000)) || (!delay && op == OP_UNREF))
			return;
		fault.active = 1;
		fault.op = op;
		fault.delay = delay;
		fault.ms = ms;
		fault.has_res = has_res;
		fault.res = res;
		snprintf(fault.name, sizeof(fault.name), "%s", name);
		fault.count = count;
		report_locked();
		return;
	}
	if (strcmp(w, "stall"))
		return;
	while ((w = strtok_r(NULL, " \t\n", &save))) {
		if (!strcmp(w, "all"))
			all = 1;
		else if (!strncmp(w, "name=", 5))
			snprintf(name, sizeof(name), "%s", w + 5);
		else if (!strncmp(w, "ring=", 5))
			ring = atoi(w + 5);
		else if (!strcmp(w, "forever"))
			forever = 1;
		else if (!strncmp(w, "ms=", 3))
			ms = strtoull(w + 3, NULL, 10);
		else
			return;
	}
	if (!all == !name[0] || (!forever && !ms))
		return;
	stall.active = 1;
	stall.all = all;
	snprintf(stall.name, sizeof(stall.name), "%s", name);
	stall.ring = ring;
	stall.until_ms = forever ? 0 : now_ms() + ms;
	stall.from = 0;
	report_locked();
}

/* Reads the control file if it changed since it was last read; ends an expired stall. */
static void stall_check_locked(void)
{
	const char *path = getenv("VGPU_SHIM_CONTROL");
	struct stat st;
	char line[256];
	FILE *f;

	if (path && stat(path, &st) == 0 &&
	    (st.st_ino != stall.ino || st.st_mtim.tv_sec != stall.mtime.tv_sec ||
	     st.st_mtim.tv_nsec != stall.mtime.tv_nsec)) {
		stall.ino = st.st_ino;
		stall.mtime = st.st_mtim;
		f = fopen(path, "r");
		if (f) {
			if (fgets(line, sizeof(line), f))
				stall_apply_locked(line);
			fclose(f);
		}
	}
	if (stall.active && stall.until_ms && now_ms() >= stall.until_ms) {
		stall_end_locked();
		report_locked();
	}
}

static int stall_matches_locked(int has_ctx, uint32_t ctx_id, uint32_t ring_idx)
{
	unsigned int i;

	if (!stall.active)
		return 0;
	if (stall.all)
		return 1;
	if (!has_ctx || (stall.ring >= 0 && (uint32_t)stall.ring != ring_idx))
		return 0;
	for (i = 0; i < ncontexts; i++)
		if (contexts[i].id == ctx_id && !strcmp(contexts[i].name, stall.name))
			return 1;
	return 0;
}

/* A fence was created: the first one under a stall starts what is withheld. */
static void stall_fence_created(int has_ctx, uint32_t ctx_id, uint32_t ring_idx, uint64_t id)
{
	pthread_mutex_lock(&lock);
	stall_check_locked();
	if (stall_matches_locked(has_ctx, ctx_id, ring_idx)) {
		if (!stall.from || id < stall.from)
			stall.from = id;
		stall.fences++;
		report_locked();
	}
	pthread_mutex_unlock(&lock);
}

static void shim_write_fence(void *cookie, uint32_t fence)
{
	uint32_t pass = fence;

	pthread_mutex_lock(&lock);
	stall_check_locked();
	if (stall_matches_locked(0, 0, 0) && stall.from && fence >= stall.from) {
		if (!stall.held0 || fence > stall.held0_fence)
			stall.held0_fence = fence;
		stall.held0 = 1;
		/* What was created before the stall retires. */
		pass = (uint32_t)stall.from - 1;
		report_locked();
	} else if (stall.held0 && stall.held0_fence <= fence) {
		stall.held0 = 0;
	}
	pthread_mutex_unlock(&lock);
	if (pass)
		qemu_write_fence(cookie, pass);
}

static void shim_write_context_fence(void *cookie, uint32_t ctx_id, uint32_t ring_idx,
				     uint64_t fence_id)
{
	uint64_t pass = fence_id;
	unsigned int i;

	pthread_mutex_lock(&lock);
	stall_check_locked();
	for (i = 0; i < stall.nheld; i++)
		if (stall.held[i].ctx_id == ctx_id && stall.held[i].ring_idx == ring_idx)
			break;
	if (stall_matches_locked(1, ctx_id, ring_idx) && stall.from && fence_id >= stall.from &&
	    (i < stall.nheld || stall.nheld < MAX_HELD)) {
		if (i == stall.nheld) {
			stall.held[i].ctx_id = ctx_id;
			stall.held[i].ring_idx = ring_idx;
			stall.held[i].fence = 0;
			stall.nheld++;
		}
		if (fence_id > stall.held[i].fence)
			stall.held[i].fence = fence_id;
		pass = stall.from - 1;
		report_locked();
	} else if (i < stall.nheld && stall.held[i].fence <= fence_id) {
		stall.held[i] = stall.held[--stall.nheld];
	}
	pthread_mutex_unlock(&lock);
	if (pass)
		qemu_write_context_fence(cookie, ctx_id, ring_idx, pass);
}

int virgl_renderer_init(void *cookie, int flags, struct virgl_renderer_callbacks *cb)
{
	REAL(int, virgl_renderer_init, void *, int, struct virgl_renderer_callbacks *);

	/* QEMU initializes the renderer again after each reset, with the same table. */
	if (cb && cb->write_fence != shim_write_fence) {
		pthread_mutex_lock(&lock);
		shim_cbs = *cb;
		qemu_write_fence = cb->write_fence;
		qemu_write_context_fence = cb->version >= 3 ? cb->write_context_fence : NULL;
		qemu_cookie = cookie;
		shim_cbs.write_fence = shim_write_fence;
		if (qemu_write_context_fence)
			shim_cbs.write_context_fence = shim_write_context_fence;
		pthread_mutex_unlock(&lock);
		cb = &shim_cbs;
	}
	return real_virgl_renderer_init(cookie, flags, cb);
}

int virgl_renderer_create_fence(int client_fence_id, uint32_t ctx_id)
{
	REAL(int, virgl_renderer_create_fence, int, uint32_t);

	stall_fence_created(0, 0, 0, (uint32_t)client_fence_id);
	return real_virgl_renderer_create_fence(client_fence_id, ctx_id);
}

int virgl_renderer_context_create_fence(uint32_t ctx_id, uint32_t flags, uint32_t ring_idx,
					uint64_t fence_id)
{
	REAL(int, virgl_renderer_context_create_fence, uint32_t, uint32_t, uint32_t, uint64_t);

	stall_fence_created(1, ctx_id, ring_idx, fence_id);
	return real_virgl_renderer_context_create_fence(ctx_id, flags, ring_idx, fence_id);
}

/* Delivers what a stall that ended withheld, on QEMU's main loop, after the real poll. */
void virgl_renderer_poll(void)
{
	REAL(void, virgl_renderer_poll, void);
	struct {
		uint32_t ctx_id, ring_idx;
		uint64_t fence;
	} out[MAX_HELD];
	unsigned int n = 0, i;
	uint32_t f0 = 0;
	void *cookie;
	int reset;

	real_virgl_renderer_poll();
	pthread_mutex_lock(&lock);
	stall_check_locked();
	if (stall.release) {
		stall.release = 0;
		if (stall.held0)
			f0 = stall.held0_fence;
		stall.held0 = 0;
		for (i = 0; i < stall.nheld; i++) {
			out[n].ctx_id = stall.held[i].ctx_id;
			out[n].ring_idx = stall.held[i].ring_idx;
			out[n].fence = stall.held[i].fence;
			n++;
		}
		stall.nheld = 0;
		report_locked();
	}
	cookie = qemu_cookie;
	reset = fault.reset_pending == RESET_PENDING;
	if (fault.reset_pending && !reset)
		fprintf(stderr, "virgl-shim: reset_pending corrupted (0x%x): ignored\n",
			fault.reset_pending);
	fault.reset_pending = 0;
	pthread_mutex_unlock(&lock);
	if (reset && cookie) {
		/*
		 * QEMU's cookie is its VirtIOGPU, whose first member is its VirtIODevice; QEMU is
		 * linked with its symbols exported for its modules, this one among them.
		 */
		void (*virtio_error)(void *vdev, const char *fmt, ...) =
			(void (*)(void *, const char *, ...))dlsym(RTLD_DEFAULT, "virtio_error");

		if (virtio_error)
			virtio_error(cookie, "virgl-shim: the host asks for a device reset");
		else
			fprintf(stderr, "virgl-shim: virtio_error not found: %s\n", dlerror());
	}
	if (f0 && qemu_write_fence)
		qemu_write_fence(cookie, f0);
	for (i = 0; i < n && qemu_write_context_fence; i++)
		qemu_write_context_fence(cookie, out[i].ctx_id, out[i].ring_idx, out[i].fence);
}
