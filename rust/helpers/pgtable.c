// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>

__rust_helper pgprot_t rust_helper_pgprot_writecombine(pgprot_t prot)
{
	return pgprot_writecombine(prot);
}

__rust_helper pgprot_t rust_helper_pgprot_noncached(pgprot_t prot)
{
	return pgprot_noncached(prot);
}

__rust_helper pgprot_t rust_helper_pgprot_decrypted(pgprot_t prot)
{
	return pgprot_decrypted(prot);
}

#ifdef CONFIG_X86
#include <asm/memtype.h>
#endif

/*
 * Memory type reservations for kernel::io::memtype: the caching is 0
 * (write-back), 1 (write-combining) or 2 (uncached; uncached-minus on x86,
 * as pgprot_noncached() there).
 */
__rust_helper int rust_helper_memtype_reserve_caching(phys_addr_t start, phys_addr_t end,
						      int *caching)
{
#ifdef CONFIG_X86
	static const enum page_cache_mode modes[] = {
		_PAGE_CACHE_MODE_WB, _PAGE_CACHE_MODE_WC, _PAGE_CACHE_MODE_UC_MINUS,
	};
	enum page_cache_mode pcm;
	int ret;

	if (*caching < 0 || *caching > 2)
		return -EINVAL;
	pcm = modes[*caching];
	ret = memtype_reserve_io(start, end, &pcm);
	if (ret)
		return ret;
	*caching = pcm == _PAGE_CACHE_MODE_WB ? 0 : pcm == _PAGE_CACHE_MODE_WC ? 1 : 2;
#endif
	return 0;
}

__rust_helper void rust_helper_memtype_free_caching(phys_addr_t start, phys_addr_t end)
{
#ifdef CONFIG_X86
	memtype_free_io(start, end);
#endif
}

__rust_helper phys_addr_t rust_helper_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}
