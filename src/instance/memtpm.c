/* libtpms as a TPM 2 with its NVRAM kept in memory (see memtpm.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "instance/memtpm.h"

#define NV_SLOTS 3

static struct {
	char name[32];
	unsigned char *data;
	uint32_t len;
} nv[NV_SLOTS];
static bool started;

static int nv_find(const char *name, int create)
{
	for (int i = 0; i < NV_SLOTS; i++)
		if (nv[i].name[0] && strcmp(nv[i].name, name) == 0)
			return i;
	if (!create)
		return -1;
	for (int i = 0; i < NV_SLOTS; i++)
		if (!nv[i].name[0]) {
			snprintf(nv[i].name, sizeof(nv[i].name), "%s", name);
			return i;
		}
	return -1;
}

static TPM_RESULT cb_nv_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nv_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
			     const char *name)
{
	int i = nv_find(name, 0);

	(void)tpm_number;
	if (i < 0 || !nv[i].data)
		return TPM_RETRY;	/* "does not exist": libtpms manufactures */
	*data = malloc(nv[i].len);	/* libtpms frees it */
	if (!*data)
		return TPM_FAIL;
	memcpy(*data, nv[i].data, nv[i].len);
	*length = nv[i].len;
	return TPM_SUCCESS;
}

/* The floor keeps state in memory: the cost a real server adds to make it
 * persistent is exactly what the comparison is meant to expose. */
static TPM_RESULT cb_nv_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
			      const char *name)
{
	int i = nv_find(name, 1);
	unsigned char *p;

	(void)tpm_number;
	if (i < 0)
		return TPM_FAIL;
	p = realloc(nv[i].data, length ? length : 1);
	if (!p)
		return TPM_FAIL;
	memcpy(p, data, length);
	nv[i].data = p;
	nv[i].len = length;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nv_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	int i = nv_find(name, 0);

	(void)tpm_number;
	if (i < 0)
		return must_exist ? TPM_FAIL : TPM_SUCCESS;
	free(nv[i].data);
	memset(&nv[i], 0, sizeof(nv[i]));
	return TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_locality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	(void)tpm_number;
	*loc = 0;
	return TPM_SUCCESS;
}

TPM_RESULT memtpm_start(void)
{
	static struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(cbs),
		.tpm_nvram_init = cb_nv_init,
		.tpm_nvram_loaddata = cb_nv_load,
		.tpm_nvram_storedata = cb_nv_store,
		.tpm_nvram_deletename = cb_nv_delete,
		.tpm_io_init = cb_io_init,
		.tpm_io_getlocality = cb_locality,
	};
	TPM_RESULT res;

	res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
	if (res == TPM_SUCCESS)
		res = TPMLIB_RegisterCallbacks(&cbs);
	if (res == TPM_SUCCESS)
		res = TPMLIB_MainInit();
	started = res == TPM_SUCCESS;
	return res;
}

void memtpm_stop(void)
{
	if (started)
		TPMLIB_Terminate();
	started = false;
	/* the seeds of a thrown-away TPM must not linger in freed memory */
	for (int i = 0; i < NV_SLOTS; i++) {
		if (nv[i].data)
			explicit_bzero(nv[i].data, nv[i].len);
		free(nv[i].data);
		memset(&nv[i], 0, sizeof(nv[i]));
	}
}
