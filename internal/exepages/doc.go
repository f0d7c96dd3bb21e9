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
// Release unmaps the resident pages of the executable's read-only
// mappings (madvise MADV_DONTNEED). The pages stay in the page cache, so
// the code that is still used is mapped again at the cost of a minor fault
// (about a microsecond, and fault-around maps the neighbours with it), and
// what is not used leaves the resident set. Nothing is lost: these
// mappings are private, read-only and backed by the file, so a page
// dropped is the same page when read again; a mapping with any page of
// its own (anonymous, e.g. one written by a dynamic loader's relocation)
// is never touched.
//
// Linux only; elsewhere Release does nothing.
package exepages
