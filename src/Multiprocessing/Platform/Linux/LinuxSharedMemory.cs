using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>memfd for anonymous regions, files in /dev/shm (what shm_open uses, so Python attaches too) for named ones.</summary>
internal sealed unsafe class LinuxSharedMemory : ISharedMemoryBackend
{
    private const string Directory = "/dev/shm/";

    public SharedRegion CreateAnonymous(long size, string debugName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        int fd = LibC.memfd_create(debugName, LibC.MFD_CLOEXEC);
        if (fd < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"cannot create shared memory for {debugName}");
        }

        return SizeAndMap(fd, size, debugName);
    }

    public SharedRegion Adopt(int handle)
    {
        long size = LibC.lseek(handle, 0, LibC.SEEK_END);
        if (size <= 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ = LibC.close(handle);
            throw new IOException($"the shared memory handle received is not a mappable region (errno {errno})");
        }

        return Map(handle, size, "a received region");
    }

    public SharedRegion CreateNamed(string name, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        string path = PathOf(name);
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CREAT | LibC.O_EXCL | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == LibC.EEXIST
                ? new IOException($"File exists: shared memory '{name}' already exists", unchecked((int)0x80070050))
                : new Win32Exception(errno, $"cannot create shared memory '{name}'");
        }

        try
        {
            return SizeAndMap(fd, size, name);
        }
        catch
        {
            _ = LibC.unlink(path);
            throw;
        }
    }

    public SharedRegion OpenNamed(string name)
    {
        int fd = LibC.open(PathOf(name), LibC.O_RDWR | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == LibC.ENOENT
                ? new FileNotFoundException($"No such shared memory: '{name}'", name)
                : new Win32Exception(errno, $"cannot open shared memory '{name}'");
        }

        long size = LibC.lseek(fd, 0, LibC.SEEK_END);
        if (size <= 0)
        {
            _ = LibC.close(fd);
            throw new IOException($"shared memory '{name}' is empty and cannot be mapped");
        }

        return Map(fd, size, name);
    }

    public bool Unlink(string name) => LibC.unlink(PathOf(name)) == 0;

    public void Unmap(byte* pointer, long length) => _ = LibC.munmap(pointer, (nuint)length);

    private static string PathOf(string name)
    {
        // Python's names may start with '/', as shm_open's do.
        string bare = name.StartsWith('/') ? name[1..] : name;
        if (bare.Length == 0 || bare.Length > 250 || bare.Contains('/') || bare.Contains('\0'))
        {
            throw new ArgumentException($"'{name}' is not a valid shared memory name: use 1 to 250 characters without '/' (one leading '/' is allowed)", nameof(name));
        }

        return Directory + bare;
    }

    private static SharedRegion SizeAndMap(int fd, long size, string what)
    {
        if (LibC.ftruncate(fd, size) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ = LibC.close(fd);
            throw new Win32Exception(errno, $"cannot size shared memory {what} to {size} bytes");
        }

        return Map(fd, size, what);
    }

    private static SharedRegion Map(int fd, long size, string what)
    {
        void* pointer = LibC.mmap(null, (nuint)size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        if (pointer == (void*)-1)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ = LibC.close(fd);
            throw new Win32Exception(errno, $"cannot map shared memory {what} ({size} bytes)");
        }

        return new SharedRegion(new FileDescriptorHandle(fd), (byte*)pointer, size);
    }
}
