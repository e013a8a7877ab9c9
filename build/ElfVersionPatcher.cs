// Marks one symbol-version requirement of an ELF64 shared library as weak.
//
// TorchSharp 0.107's libLibTorchSharp.so was built with GCC 13, whose <iostream> plants an
// undefined reference to std::ios_base_library_init()@GLIBCXX_3.4.32 purely to pin the
// libstdc++ version. Nothing calls it (no relocation refers to it), but the dynamic loader
// refuses the whole library on hosts whose libstdc++ stops at GLIBCXX_3.4.30 (Debian 12).
// Setting VER_FLG_WEAK on that one Vernaux entry of .gnu.version_r turns the hard failure into
// nothing at all: a 2-byte edit.
//
// This file is compiled twice: as an MSBuild inline task (build/TorchSharpNative.targets) that
// patches the copy in a build or publish output, and into the test project, which tests the
// parser on a real ELF file. It must stay free of dependencies other than the BCL, and compile
// against netstandard2.0 (what MSBuild's RoslynCodeTaskFactory offers).
#nullable enable
using System;
using System.IO;
using System.Text;

namespace StyleTransfer.Build
{
    public enum ElfPatchResult
    {
        /// <summary>The entry was strong and is now weak.</summary>
        Patched,

        /// <summary>The entry was weak already: nothing written.</summary>
        AlreadyWeak,

        /// <summary>The library does not require that version at all: nothing written.</summary>
        NotRequired,
    }

    public static class ElfVersionPatcher
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>
        /// Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="version"/> in the
        /// .gnu.version_r section of the ELF64 little-endian file at <paramref name="path"/>.
        /// </summary>
        /// <exception cref="InvalidDataException">The file is not an ELF64 little-endian object or is truncated.</exception>
        public static ElfPatchResult MarkVersionWeak(string path, string version)
        {
            byte[] elf = File.ReadAllBytes(path);
            ElfPatchResult result = MarkVersionWeak(elf, version, out bool changed);
            if (changed)
            {
                // Write beside the target and rename over it, so a crash never leaves half a library.
                string temp = path + ".patching";
                File.WriteAllBytes(temp, elf);
                File.Delete(path);
                File.Move(temp, path);
            }

            return result;
        }

        /// <summary>In-memory form of <see cref="MarkVersionWeak(string, string)"/>.</summary>
        public static ElfPatchResult MarkVersionWeak(byte[] elf, string version, out bool changed)
        {
            changed = false;
            ElfPatchResult result = ElfPatchResult.NotRequired;
            foreach (int flagsOffset in FindVernauxFlags(elf, version))
            {
                ushort flags = ReadU16(elf, flagsOffset);
                if ((flags & VerFlgWeak) != 0)
                {
                    if (result == ElfPatchResult.NotRequired)
                    {
                        result = ElfPatchResult.AlreadyWeak;
                    }

                    continue;
                }

                WriteU16(elf, flagsOffset, (ushort)(flags | VerFlgWeak));
                changed = true;
                result = ElfPatchResult.Patched;
            }

            return result;
        }

        /// <summary>True when the file's Vernaux entry for <paramref name="version"/> exists and is weak.</summary>
        public static bool IsVersionWeak(string path, string version)
        {
            byte[] elf = File.ReadAllBytes(path);
            bool any = false;
            foreach (int flagsOffset in FindVernauxFlags(elf, version))
            {
                any = true;
                if ((ReadU16(elf, flagsOffset) & VerFlgWeak) == 0)
                {
                    return false;
                }
            }

            return any;
        }

        /// <summary>
        /// True when a libstdc++ file defines the given version (its version-definition strings
        /// hold "GLIBCXX_3.4.32\0"). A byte search is enough: the name appears only there.
        /// </summary>
        public static bool FileDefinesVersion(string path, string version)
        {
            byte[] data = File.ReadAllBytes(path);
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            for (int i = 0; i + needle.Length <= data.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && data[i + j] == needle[j])
                {
                    j++;
                }

                if (j == needle.Length)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>File offsets of the vna_flags fields of the Vernaux entries named <paramref name="version"/>.</summary>
        private static System.Collections.Generic.List<int> FindVernauxFlags(byte[] elf, string version)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            {
                throw new InvalidDataException("not an ELF file");
            }

            if (elf[4] != 2 || elf[5] != 1)
            {
                throw new InvalidDataException("not a 64-bit little-endian ELF file");
            }

            long shoff = (long)ReadU64(elf, 0x28);
            int shentsize = ReadU16(elf, 0x3A);
            int shnum = ReadU16(elf, 0x3C);
            var found = new System.Collections.Generic.List<int>();
            for (int i = 0; i < shnum; i++)
            {
                int sh = Checked(elf, shoff + ((long)i * shentsize), 64);
                if (ReadU32(elf, sh + 4) != ShtGnuVerneed)
                {
                    continue;
                }

                int secOffset = Checked(elf, (long)ReadU64(elf, sh + 0x18), 0);
                int strtabIndex = (int)ReadU32(elf, sh + 0x28);
                int verneedCount = (int)ReadU32(elf, sh + 0x2C);
                int strSh = Checked(elf, shoff + ((long)strtabIndex * shentsize), 64);
                int strOffset = Checked(elf, (long)ReadU64(elf, strSh + 0x18), 0);

                int vn = secOffset;
                for (int n = 0; n < verneedCount; n++)
                {
                    Checked(elf, vn, 16);
                    int auxCount = ReadU16(elf, vn + 2);
                    int aux = vn + (int)ReadU32(elf, vn + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        Checked(elf, aux, 16);
                        string name = ReadCString(elf, strOffset + (int)ReadU32(elf, aux + 8));
                        if (name == version)
                        {
                            found.Add(aux + 4);
                        }

                        aux += (int)ReadU32(elf, aux + 12);
                    }

                    vn += (int)ReadU32(elf, vn + 12);
                }
            }

            return found;
        }

        private static int Checked(byte[] elf, long offset, int length)
        {
            if (offset < 0 || offset + length > elf.Length)
            {
                throw new InvalidDataException("truncated ELF file");
            }

            return (int)offset;
        }

        private static string ReadCString(byte[] elf, int offset)
        {
            int end = Array.IndexOf(elf, (byte)0, Checked(elf, offset, 1));
            if (end < 0)
            {
                throw new InvalidDataException("truncated ELF string table");
            }

            return Encoding.ASCII.GetString(elf, offset, end - offset);
        }

        private static ushort ReadU16(byte[] b, int o) => (ushort)(b[o] | (b[o + 1] << 8));

        private static uint ReadU32(byte[] b, int o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));

        private static ulong ReadU64(byte[] b, int o) => ReadU32(b, o) | ((ulong)ReadU32(b, o + 4) << 32);

        private static void WriteU16(byte[] b, int o, ushort v)
        {
            b[o] = (byte)v;
            b[o + 1] = (byte)(v >> 8);
        }
    }
#if !ELF_PATCHER_WITHOUT_MSBUILD
    /// <summary>
    /// MSBuild task: weakens LibTorchSharp's GLIBCXX_3.4.32 requirement in the given copies when
    /// the host's libstdc++ lacks that version. Never touches the NuGet cache (it only receives
    /// paths inside an output folder).
    /// </summary>
    public sealed class WeakenLibTorchSharpGlibcxx : Microsoft.Build.Utilities.Task
    {
        private const string Version = "GLIBCXX_3.4.32";

        [Microsoft.Build.Framework.Required]
        public string[] Files { get; set; } = Array.Empty<string>();

        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux))
            {
                return true;
            }

            string? libstdcxx = FindLibStdCxx();
            if (libstdcxx != null && ElfVersionPatcher.FileDefinesVersion(libstdcxx, Version))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{libstdcxx} has {Version}: stock LibTorchSharp kept.");
                return true;
            }

            foreach (string file in Files)
            {
                if (!File.Exists(file))
                {
                    continue;
                }

                ElfPatchResult r = ElfVersionPatcher.MarkVersionWeak(file, Version);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{file}: {Version} requirement {r}.");
            }

            return true;
        }

        private static string? FindLibStdCxx()
        {
            foreach (string dir in new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" })
            {
                string candidate = Path.Combine(dir, "libstdc++.so.6");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            return null;
        }
    }
#endif
}
