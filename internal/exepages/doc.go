// Package exepages gives back the pages of the program's own executable
// that only its start used.
//
// A Go binary is mapped from its file: its code (text) and read-only data
// (rodata, the function tables). The kernel maps a page into the process
// when it is first touched, and then keeps it mapped, and counted in the
// process's resident set (RSS), for as long as the process runs and the
// machine has memory to spare. Starting the gateway touches most of its
// binary once (every package's initialisation, config parsing and
// validation, templates, the connectors' set-up), and with the kernel's
// fault-around (a fault maps up to 16 neighbouring pages that are in the
// page cache) a 15 MB binary ends up about 13 MB resident, although a
// running gateway maps again only 5 to 9 MB of it (idle, polling).
//
// Release with PageOut pages the executable's read-only mappings out
// (madvise MADV_PAGEOUT): their pages leave the process and, where no
// other process maps them, the page cache too. It first marks the
// mappings MADV_RANDOM, so that a page read again is read alone, without
// the kernel's read-ahead of its neighbours; fault-around then finds no
// neighbours in the cache to map. The code still in use is read again
// from the file (a major fault each page, once), and only what the
// running gateway touches comes back. Unmapping alone (MADV_DONTNEED:
// Unmap, and what PageOut does on a kernel before 5.4) leaves every page
// in the cache, and fault-around maps 16 pages around each one touched.
// After one PageOut, what is cached is what was read since, so an Unmap
// then gives back what rare work mapped without making the code in use
// wait for the disk.
//
// Nothing is lost: these mappings are private, read-only and backed by
// the file, so a page dropped is the same page when read again; a mapping
// with any page of its own (anonymous, e.g. one written by a dynamic
// loader's relocation) is never touched.
//
// On squashfs (the appliance image's root) PageOut unmaps only, as Unmap:
// squashfs reads a whole compressed block to read one page of it and
// caches all the block's pages, so a page read again brings its
// neighbours back and paging out gains nothing there. The same on tmpfs
// and ramfs, where the file itself is in memory.
//
// Linux only; elsewhere Release does nothing.
package exepages
