//! The lab's test images, made by mq itself (no downloaded binaries).
//!
//! [`x86_kernel`] emits a 32-bit x86 Multiboot (v1) kernel, the way seL4's
//! x86 images boot under QEMU: `-kernel KERNEL -initrd ROOTSERVER`. It prints
//! a banner on the first serial port, then the bytes of every module it was
//! given (so the second file's text appears on the console: the two-file flow
//! is real), then halts. [`rootserver`] is such a module: plain text.
//!
//! The machine code is assembled here, by a twenty-line assembler, from the
//! listing in [`x86_kernel`]'s body; there are no other sources.

/// Where Multiboot loads the kernel (1 MiB).
const LOAD_ADDRESS: u32 = 0x0010_0000;
const MULTIBOOT_MAGIC: u32 = 0x1BAD_B002;
/// Flag bit 16: the header gives load addresses (the "a.out kludge"), so the
/// file needs no ELF headers.
const MULTIBOOT_AOUT_KLUDGE: u32 = 1 << 16;
/// Multiboot info flag bit 3: mods_count and mods_addr are valid.
const INFO_MODS: u32 = 1 << 3;
const COM1: u16 = 0x3F8;

/// A tiny assembler: bytes, labels, and 8/32-bit relative jumps to labels.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: Vec<(&'static str, usize)>,
    /// (position of the displacement, its width, the label)
    fixups: Vec<(usize, usize, &'static str)>,
    /// (position of an absolute 32-bit address, the label)
    absolute: Vec<(usize, &'static str)>,
}

impl Asm {
    fn bytes(&mut self, b: &[u8]) -> &mut Asm {
        self.code.extend_from_slice(b);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Asm {
        self.bytes(&v.to_le_bytes())
    }
    fn label(&mut self, name: &'static str) -> &mut Asm {
        self.labels.push((name, self.code.len()));
        self
    }
    /// An opcode followed by an 8-bit displacement to `label`.
    fn rel8(&mut self, opcode: u8, label: &'static str) -> &mut Asm {
        self.code.push(opcode);
        self.fixups.push((self.code.len(), 1, label));
        self.code.push(0);
        self
    }
    /// `call label` (E8 rel32).
    fn call(&mut self, label: &'static str) -> &mut Asm {
        self.code.push(0xE8);
        self.fixups.push((self.code.len(), 4, label));
        self.u32(0)
    }
    /// An opcode followed by the absolute (loaded) address of `label`.
    fn abs32(&mut self, opcode: &[u8], label: &'static str) -> &mut Asm {
        self.bytes(opcode);
        self.absolute.push((self.code.len(), label));
        self.u32(0)
    }
    fn finish(mut self) -> Vec<u8> {
        let find = |labels: &[(&str, usize)], name: &str| {
            labels
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, at)| *at)
                .unwrap_or_else(|| panic!("label {name} is defined"))
        };
        for &(at, width, label) in &self.fixups {
            let target = find(&self.labels, label) as i64;
            let displacement = target - (at + width) as i64;
            match width {
                1 => self.code[at] = i8::try_from(displacement).expect("short jump in range") as u8,
                _ => self.code[at..at + 4].copy_from_slice(&(displacement as i32).to_le_bytes()),
            }
        }
        for &(at, label) in &self.absolute {
            let address = LOAD_ADDRESS + find(&self.labels, label) as u32;
            self.code[at..at + 4].copy_from_slice(&address.to_le_bytes());
        }
        self.code
    }
}

/// The kernel's banner: boot-progress lines mq-console's seL4 markers know.
pub const BANNER: &str = "mq test kernel: multiboot entry\r\nBootstrapping kernel\r\nBooting all finished, dropped to user space\r\n";

/// A Multiboot x86 kernel that prints [`BANNER`], then every module's bytes,
/// then `mq test kernel: halting`, and halts.
pub fn x86_kernel() -> Vec<u8> {
    let mut a = Asm::default();
    // Multiboot header, at the start of the file and of the loaded image.
    a.u32(MULTIBOOT_MAGIC)
        .u32(MULTIBOOT_AOUT_KLUDGE)
        .u32(0u32.wrapping_sub(MULTIBOOT_MAGIC + MULTIBOOT_AOUT_KLUDGE))
        .u32(LOAD_ADDRESS) // header_addr
        .u32(LOAD_ADDRESS) // load_addr
        .u32(0) // load_end_addr: the whole file
        .u32(0) // bss_end_addr: no bss
        .u32(LOAD_ADDRESS + 32); // entry_addr: right after this header
    assert_eq!(a.code.len(), 32);

    // entry: EBX = Multiboot information.
    a.label("entry")
        .abs32(&[0xBE], "banner") //           mov esi, banner
        .call("puts")
        .bytes(&[0x8B, 0x03]) //               mov eax, [ebx]        ; flags
        .bytes(&[0xA9]) //                     test eax, INFO_MODS
        .u32(INFO_MODS)
        .rel8(0x74, "done") //                 jz done
        .bytes(&[0x8B, 0x4B, 0x14]) //         mov ecx, [ebx+20]     ; mods_count
        .bytes(&[0x85, 0xC9]) //               test ecx, ecx
        .rel8(0x74, "done") //                 jz done
        .bytes(&[0x8B, 0x7B, 0x18]) //         mov edi, [ebx+24]     ; mods_addr
        .label("module")
        .bytes(&[0x8B, 0x37]) //               mov esi, [edi]        ; mod_start
        .bytes(&[0x8B, 0x6F, 0x04]) //         mov ebp, [edi+4]      ; mod_end
        .call("putn")
        .bytes(&[0x83, 0xC7, 0x10]) //         add edi, 16
        .bytes(&[0x49]) //                     dec ecx
        .rel8(0x75, "module") //               jnz module
        .label("done")
        .abs32(&[0xBE], "halting") //          mov esi, halting
        .call("puts")
        .label("halt")
        .bytes(&[0xFA, 0xF4]) //               cli; hlt
        .rel8(0xEB, "halt"); //                jmp halt

    // puts: print the NUL-terminated string at ESI.
    a.label("puts")
        .bytes(&[0xAC]) //                     lodsb
        .bytes(&[0x84, 0xC0]) //               test al, al
        .rel8(0x74, "puts_end") //             jz puts_end
        .call("putc")
        .rel8(0xEB, "puts") //                 jmp puts
        .label("puts_end")
        .bytes(&[0xC3]); //                    ret

    // putn: print the bytes from ESI up to EBP.
    a.label("putn")
        .bytes(&[0x39, 0xEE]) //               cmp esi, ebp
        .rel8(0x73, "putn_end") //             jae putn_end
        .bytes(&[0xAC]) //                     lodsb
        .call("putc")
        .rel8(0xEB, "putn") //                 jmp putn
        .label("putn_end")
        .bytes(&[0xC3]); //                    ret

    // putc: send AL to COM1 once its transmitter is empty.
    let [lo, hi] = (COM1 + 5).to_le_bytes();
    let [data_lo, data_hi] = COM1.to_le_bytes();
    a.label("putc")
        .bytes(&[0x50]) //                     push eax
        .bytes(&[0x66, 0xBA, lo, hi]) //       mov dx, COM1+5        ; line status
        .label("putc_wait")
        .bytes(&[0xEC]) //                     in al, dx
        .bytes(&[0xA8, 0x20]) //               test al, 0x20         ; THR empty
        .rel8(0x74, "putc_wait") //            jz putc_wait
        .bytes(&[0x58]) //                     pop eax
        .bytes(&[0x66, 0xBA, data_lo, data_hi]) // mov dx, COM1
        .bytes(&[0xEE]) //                     out dx, al
        .bytes(&[0xC3]); //                    ret

    a.label("banner").bytes(BANNER.as_bytes()).bytes(&[0]);
    a.label("halting")
        .bytes(b"mq test kernel: halting\r\n")
        .bytes(&[0]);
    a.finish()
}

/// A root-server module: text the kernel prints.
pub fn rootserver(completion: &str) -> Vec<u8> {
    format!(
        "mq test rootserver: started\r\nStarting test suite mq-lab\r\nTest LAB0001 passed\r\n{completion}\r\n"
    )
    .into_bytes()
}

/// The boot text of [`arm64_image`]: what seL4's ELF loader and kernel print.
pub const ARM64_BANNER: &str = "ELF-loader started on CPU: ARM Ltd. Cortex-A53 (mq test image)\r\nJumping to kernel-image entry point...\r\nBootstrapping kernel\r\nBooting all finished, dropped to user space\r\nStarting test suite mq-lab\r\nTest LAB0001 passed\r\n";

/// A raw AArch64 image for QEMU's `virt` machine (loaded at RAM + 0x80000 and
/// entered at its first byte): prints [`ARM64_BANNER`] and `completion` on
/// the PL011 UART at 0x0900_0000, then waits for interrupts for ever. Like
/// seL4's Arm images it is one file: the test's text is inside it.
pub fn arm64_image(completion: &str) -> Vec<u8> {
    // A64 instructions are 32-bit words; labels are word indices.
    let mut words: Vec<u32> = Vec::new();
    let at = |words: &Vec<u32>| words.len() as i64;
    words.push(0xD2A1_2001); //                 movz x1, #0x0900, lsl #16   ; UART0
    let adr_at = at(&words);
    words.push(0x1000_0002); //                 adr  x2, text (fixed below)
    let next = at(&words);
    words.push(0x3840_1443); //                 next: ldrb w3, [x2], #1
    let cbz_at = at(&words);
    words.push(0x3400_0003); //                 cbz  w3, done (fixed below)
    let wait = at(&words);
    words.push(0xB940_1824); //                 wait: ldr w4, [x1, #0x18]  ; UARTFR
    let tbnz_at = at(&words);
    words.push(0x3728_0004); //                 tbnz w4, #5, wait           ; TX FIFO full
    words.push(0x3900_0023); //                 strb w3, [x1]               ; UARTDR
    let b_at = at(&words);
    words.push(0x1400_0000); //                 b    next
    let done = at(&words);
    words.push(0xD503_207F); //                 done: wfi
    words.push(0x1400_0000 | (((done - at(&words)) as u32) & 0x03FF_FFFF)); // b done
    let text = at(&words);

    let rel = |from: i64, to: i64| to - from;
    // adr: a byte offset split into immlo (bits 29-30) and immhi (bits 5-23).
    let off = rel(adr_at, text) * 4;
    words[adr_at as usize] |= (((off & 3) as u32) << 29) | ((((off >> 2) & 0x7FFFF) as u32) << 5);
    words[cbz_at as usize] |= ((rel(cbz_at, done) as u32) & 0x7FFFF) << 5;
    words[tbnz_at as usize] |= ((rel(tbnz_at, wait) as u32) & 0x3FFF) << 5;
    words[b_at as usize] |= (rel(b_at, next) as u32) & 0x03FF_FFFF;

    let mut image: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    image.extend_from_slice(ARM64_BANNER.as_bytes());
    image.extend_from_slice(completion.as_bytes());
    image.extend_from_slice(b"\r\n\0");
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_image_branches_stay_inside_and_the_text_follows_the_code() {
        let img = arm64_image("done!");
        let word = |i: usize| u32::from_le_bytes(img[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(0), 0xD2A1_2001, "movz x1, #0x0900, lsl #16");
        // adr x2 points just past the last instruction (the final `b done`).
        let adr = word(1);
        let offset = (((adr >> 5) & 0x7FFFF) << 2 | ((adr >> 29) & 3)) as usize;
        assert_eq!(4 + offset, 40, "ten instructions, then the text");
        assert_eq!(&img[40..40 + 16], b"ELF-loader start");
        assert!(img.ends_with(b"done!\r\n\0"));
        // The final `b done` jumps back one instruction.
        assert_eq!(word(9), 0x1400_0000 | 0x03FF_FFFF);
    }

    #[test]
    fn multiboot_header_is_valid() {
        let k = x86_kernel();
        let word = |i: usize| u32::from_le_bytes(k[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(0), MULTIBOOT_MAGIC);
        assert_eq!(word(0).wrapping_add(word(1)).wrapping_add(word(2)), 0);
        assert_eq!(word(7), LOAD_ADDRESS + 32);
        assert!(k.len() < 8192, "the header must be in the first 8 KiB");
        // The banner's address, loaded, is what `mov esi` gets.
        let banner_at = k
            .windows(BANNER.len())
            .position(|w| w == BANNER.as_bytes())
            .unwrap();
        assert_eq!(&k[32..33], &[0xBE]);
        assert_eq!(
            u32::from_le_bytes(k[33..37].try_into().unwrap()),
            LOAD_ADDRESS + banner_at as u32
        );
    }
}
