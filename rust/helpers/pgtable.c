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

__rust_helper int rust_helper_io_remap_pfn_range(struct vm_area_struct *vma,
						 unsigned long addr,
						 unsigned long pfn,
						 unsigned long size, pgprot_t prot)
{
	return io_remap_pfn_range(vma, addr, pfn, size, prot);
}

#ifdef CONFIG_X86
#include <asm/mtrr.h>

__rust_helper u8 rust_helper_mtrr_type_lookup(u64 addr, u64 end, u8 *uniform)
{
	return mtrr_type_lookup(addr, end, uniform);
}
#endif

__rust_helper phys_addr_t rust_helper_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}
