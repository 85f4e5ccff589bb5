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
 * With VGPU_SHIM_REPORT=<file>, the shim writes its counters to the file
 * whenever they change: "created N released M reset R live L unknown U",
 * where unknown counts unrefs of resources that were not live (a resource
 * released twice, or never created).
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

static void report_locked(void)
{
	const char *path = getenv("VGPU_SHIM_REPORT");
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "created %lu released %lu reset %lu live %u unknown %lu\n",
		created, released, resets, nlive, unknown);
	fclose(f);
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
	/* The device reset released every resource on the host. */
	pthread_mutex_lock(&lock);
	released += nlive;
	nlive = 0;
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
