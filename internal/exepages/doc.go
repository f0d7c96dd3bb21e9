// Package exepages gives back the pages of the program's own executable
// that only its start used.
//
// A Go binary is mapped from its file: its code (text) and read-only data
// (rodata, the function tables). The kernel maps a page into the process
// when it is first touched, and then keeps it mapped, and counted in the
// process's resident set (RSS), for as long as the process runs and the
// machine has memory to spare. Starting the gateway touches most of its
// binary once (every package's initialisation, config parsing and
// validation, templates, the connectors' set-up), and a 15 MB binary ends
// up about 13 MB resident, although a running gateway uses about 3 MB of
// it (at 10 Hz Modbus).
//
// Unmapping the pages (madvise MADV_DONTNEED) is not enough: they stay in
// the page cache, and at each fault the kernel's fault-around maps up to
// 16 pages around the one touched (64 KB), from what the cache holds. The
// garbage collector reads the function table for every frame of every
// stack at each cycle, spread over the whole table, so after an unmap
// about 9 MB of the binary were mapped again at 10 Hz. Fault-around stays
// within the mapping of the fault. So the first Release splits the
// binary's mappings into mappings of one page each (every other page
// marked MADV_DONTDUMP, which the kernel cannot merge with its unmarked
// neighbours) and then unmaps them: a page used again is mapped alone,
// whatever the file system. This is what works on squashfs, the appliance
// image's root, which decompresses a whole 128 KB block to read one page
// and caches all of it: paging the pages out of the cache cannot keep
// the neighbours from coming back there. Each mapping costs the kernel
// about 200 bytes of its own memory (not counted in RSS): about 0.75 MB
// for the gateway's 3,600 pages, against about 6 MB less RSS.
//
// Later releases only unmap, and give back what rare work mapped since
// (a configuration applied, an RPC answered); the code in use comes back
// from the page cache at a minor fault a page.
//
// Nothing is lost: these mappings are private, read-only and backed by
// the file, so a page dropped is the same page when read again; a mapping
// with a page of its own (anonymous, e.g. one written by a dynamic
// loader's relocation) is never taken, and a page written since (a
// debugger's breakpoint) is never dropped.
//
// Linux only; elsewhere Open says so.
package exepages
