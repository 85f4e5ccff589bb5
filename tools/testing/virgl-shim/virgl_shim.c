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
 * Other blobs get the real library's answers. Everything else is passed
 * through unchanged.
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
 *   res-ids ID,... ctxs ID:CAPSET:NAME,... caps ID:VERSION:SIZE:FNV:FILLS,...
 *
 * (one line, "-" for an empty list, at most 64 handles then ",+N"): resources and contexts created and
 * released, "unknown" counting releases of what was not live (released twice,
 * or never created); the live resource and context handles, each context with
 * the capset it was created for and its debug name; and for each capset the
 * guest fetched, the size and FNV-1a 64 hash of the host's answer and how
 * many times the host was asked. The rig reads the file when the guest asks
 * (a line on the serial console) and at the end of a boot.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
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
static unsigned int nlive;

#define MAX_CONTEXTS 256
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
	fprintf(f, "%s\n", ncapsets ? "" : "-");
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

static void live_add_locked(uint32_t res)
{
	if (nlive < MAX_TRACKED)
		live[nlive++] = res;
	created++;
	report_locked();
}

static void live_remove_locked(uint32_t res)
{
	unsigned int i;

	for (i = 0; i < nlive; i++) {
		if (live[i] == res) {
			live[i] = live[--nlive];
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
	int ret = real_virgl_renderer_resource_create_blob(args);
	unsigned int i;

	if (ret)
		return ret;
	pthread_mutex_lock(&lock);
	live_add_locked(args->res_handle);
	if ((args->blob_id >> 16) == SHIM_MAGIC) {
		for (i = 0; i < MAX_TRACKED; i++) {
			if (!tracked[i].res_handle) {
				tracked[i].res_handle = args->res_handle;
				tracked[i].behaviour = args->blob_id & 0xffff;
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
	int ret = real_virgl_renderer_resource_create(args, iov, num_iovs);

	if (!ret) {
		/* res_handle is the first member of the args. */
		pthread_mutex_lock(&lock);
		live_add_locked(*(uint32_t *)args);
		pthread_mutex_unlock(&lock);
	}
	return ret;
}

void virgl_renderer_resource_unref(uint32_t res_handle)
{
	REAL(void, virgl_renderer_resource_unref, uint32_t);
	unsigned int i;

	real_virgl_renderer_resource_unref(res_handle);
	pthread_mutex_lock(&lock);
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
	return real_virgl_renderer_resource_map(res_handle, map, out_size);
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
	int ret;

	in_context_create = 1;
	ret = real_virgl_renderer_context_create(handle, nlen, name);
	in_context_create = 0;
	if (!ret)
		context_created(handle, 0, nlen, name);
	return ret;
}

/* The low byte of the flags is the capset (VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK). */
int virgl_renderer_context_create_with_flags(uint32_t ctx_id, uint32_t ctx_flags,
					     uint32_t nlen, const char *name)
{
	REAL(int, virgl_renderer_context_create_with_flags, uint32_t, uint32_t, uint32_t,
	     const char *);
	int ret = real_virgl_renderer_context_create_with_flags(ctx_id, ctx_flags, nlen, name);

	if (!ret && !in_context_create)
		context_created(ctx_id, ctx_flags & 0xff, nlen, name);
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
	} else {
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
