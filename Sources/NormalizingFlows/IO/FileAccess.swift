import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing the files a user names, without trusting them.
///
/// - Reading takes the whole file after checking its size against a limit (a stream such as a
///   pipe or `/dev/zero` is read up to the limit), so a huge or endless input is refused with a
///   message instead of exhausting memory.
/// - Writing a regular file is atomic: a temporary file in the same folder, given the mode of the
///   file it replaces (or the umask's default), renamed over it only when complete. Devices,
///   FIFOs and sockets (`/dev/null`, a named pipe) are written directly, never replaced.
///   A symbolic link is followed, so the file it names is replaced, not the link.
/// - Temporary files are registered while they exist; ``removeTemporaryFilesOnSignals()``
///   makes SIGINT, SIGTERM, SIGHUP and SIGQUIT remove them before the process dies.
///
/// Every failure is a ``FileError`` with the system's reason (`strerror`), never a Foundation
/// error domain code.
public enum FileAccess {
    /// The largest file ``read(_:limit:streamLimit:progress:)`` takes by default: half the physical memory.
    public static var defaultReadLimit: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 2) }

    /// The most read from a stream (a pipe, a device) by default: 1 GiB.
    public static let defaultStreamLimit = 1 << 30

    /// Files at least this large get progress reports while they are read.
    public static let progressThreshold = 32 << 20

    /// The bytes of the file at `path`.
    /// - Parameters:
    ///   - path: the file, or a device or FIFO to read from.
    ///   - limit: the largest regular file accepted, in bytes.
    ///   - streamLimit: the most read from a stream before giving up.
    ///   - progress: called with (bytes read, file size) every few MB for files of at least
    ///     ``progressThreshold`` bytes.
    /// - Throws: ``FileError`` for a missing, unreadable or oversized file, a folder, or a FIFO
    ///   that gives no data (no process writes to it).
    public static func read(_ path: String, limit: Int = defaultReadLimit, streamLimit: Int = defaultStreamLimit,
                            progress: ((Int, Int) -> Void)? = nil) throws -> Data {
        // Non-blocking open: opening a FIFO that no one writes to would otherwise wait forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, reason(errno, reading: true)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, reason(errno, reading: true)) }
        let kind = info.st_mode & S_IFMT
        if kind == S_IFDIR { throw FileError(path: path, "is a folder, not a file") }
        // Reads block again (a pipe with a writer delivers its data; one without gives end of file).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        if kind == S_IFREG {
            let size = Int(info.st_size)
            guard size <= limit else {
                throw FileError(path: path, "is \(byteCount(size)), more than the \(byteCount(limit)) this machine can hold in memory for it")
            }
            var data = Data(count: size)
            var done = 0
            var lastReport = 0
            let report = size >= progressThreshold ? progress : nil
            try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
                while done < size {
                    let n = Glibc_read(fd, buffer.baseAddress! + done, Swift.min(size - done, 8 << 20))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileError(path: path, reason(errno, reading: true))
                    }
                    if n == 0 { break }   // the file shrank while being read
                    done += n
                    if let report, done - lastReport >= 8 << 20 || done == size { report(done, size); lastReport = done }
                }
            }
            return done == size ? data : data.prefix(done)
        }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc_read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, reason(errno, reading: true))
            }
            if n == 0 {
                // Opened without waiting (above), a FIFO that no process writes to is at its end at once.
                if kind == S_IFIFO && data.isEmpty {
                    throw FileError(path: path, "is a named pipe (FIFO) that gave no data: no process was writing to it; start the writer first, or save the data to a file")
                }
                return data
            }
            guard data.count + n <= streamLimit else {
                throw FileError(path: path, "gives more than \(byteCount(streamLimit)) (it is a stream, not a regular file); save the data to a file first")
            }
            data.append(contentsOf: chunk[0..<n])
        }
    }

    /// Whether `a` and `b` name the same existing file (the same device and inode).
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// Checks, before any work is done, that `path` can be written: an existing special file
    /// (device, FIFO) or a regular file or new name in an existing, writable folder.
    /// - Throws: ``FileError`` saying why not.
    public static func checkWritable(_ path: String) throws {
        guard !path.isEmpty else { throw FileError(path: "''", "is an empty file name") }
        var info = stat()
        if stat(path, &info) == 0 {
            let kind = info.st_mode & S_IFMT
            if kind == S_IFDIR { throw FileError(path: path, "is a folder; name a file to write") }
            if kind != S_IFREG {
                guard access(path, W_OK) == 0 else { throw FileError(path: path, reason(errno, reading: false)) }
                return
            }
        }
        let folder = parentFolder(of: resolved(path))
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0 else {
            throw FileError(path: path, "cannot be written: the folder \(folder) does not exist")
        }
        guard folderInfo.st_mode & S_IFMT == S_IFDIR else { throw FileError(path: path, "cannot be written: \(folder) is not a folder") }
        guard access(folder, W_OK) == 0 else { throw FileError(path: path, "cannot be written: the folder \(folder) is not writable") }
    }

    /// Writes `data` to `path`: atomically for a regular file (keeping an existing file's mode),
    /// directly for a device, FIFO or socket.
    /// - Throws: ``FileError`` with the system's reason; a failed write leaves any existing file
    ///   untouched and no temporary file behind.
    public static func write(_ data: Data, to path: String) throws {
        let target = resolved(path)
        var info = stat()
        let exists = stat(target, &info) == 0
        if exists && info.st_mode & S_IFMT == S_IFDIR { throw FileError(path: path, "is a folder; name a file to write") }
        if exists && info.st_mode & S_IFMT != S_IFREG {
            // Non-blocking open: a FIFO that no one reads is an error (ENXIO), not a wait forever.
            let fd = open(target, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else {
                throw FileError(path: path, errno == ENXIO ? "cannot be written: no process is reading this FIFO" : reason(errno, reading: false))
            }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            try writeAll(data, to: fd, path: path)
            return
        }
        let folder = parentFolder(of: target)
        let name = (target as NSString).lastPathComponent
        var template = Array("\(folder)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError(path: path, "cannot be written: " + reason(errno, reading: false)) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let slot = TemporaryFiles.register(temporary)
        var committed = false
        defer {
            if !committed { unlink(temporary) }
            TemporaryFiles.unregister(slot)
        }
        do {
            let mode = exists ? info.st_mode & 0o7777 : defaultMode()
            if exists { _ = fchown(fd, info.st_uid, info.st_gid) }   // as root: keep the owner; otherwise a no-op failure
            guard fchmod(fd, mode) == 0 else { throw FileError(path: path, "cannot be written: " + reason(errno, reading: false)) }
            try writeAll(data, to: fd, path: path)
            guard fsync(fd) == 0 else { throw FileError(path: path, "cannot be written: " + reason(errno, reading: false)) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw FileError(path: path, "cannot be written: " + reason(errno, reading: false)) }
        guard rename(temporary, target) == 0 else { throw FileError(path: path, "cannot be written: " + reason(errno, reading: false)) }
        committed = true
    }

    /// Writes `data` to standard output (after anything `print` buffered).
    /// - Throws: ``FileError`` for "standard output" when the write fails (a full disk,
    ///   `/dev/full`, a closed pipe).
    public static func writeStandardOutput(_ data: Data) throws {
        guard fflush(nil) == 0 else { throw FileError(path: "standard output", "cannot write: " + String(cString: strerror(errno))) }
        try writeAll(data, to: STDOUT_FILENO, path: "standard output")
    }

    /// Makes SIGINT, SIGTERM, SIGHUP and SIGQUIT remove the temporary files of writes in
    /// progress, then end the process as the signal would have.
    public static func removeTemporaryFilesOnSignals() {
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            installHandler(signal)
        }
    }

    // MARK: Helpers

    private static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var done = 0
            while done < buffer.count {
                let n = Glibc_write(fd, buffer.baseAddress! + done, Swift.min(buffer.count - done, 8 << 20))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: path, "cannot write: " + String(cString: strerror(errno)))
                }
                done += n
            }
        }
    }

    /// The path with symbolic links resolved when it exists (so writing replaces the file a link
    /// names, not the link).
    private static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    private static func parentFolder(of path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    private static func defaultMode() -> mode_t {
        let mask = umask(0)
        umask(mask)
        return 0o666 & ~mask
    }

    static func reason(_ code: Int32, reading: Bool) -> String {
        switch code {
        case ENOENT: return reading ? "no such file" : "no such file or folder"
        case EACCES: return "permission denied"
        case EISDIR: return "is a folder, not a file"
        default: return String(cString: strerror(code)).lowercased()
        }
    }

    /// "2.5 GB", "312 MB", "4 KB" or "17 bytes".
    static func byteCount(_ n: Int) -> String {
        let value = Double(n)
        if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.0f MB", value / 1e6) }
        if value >= 1e4 { return String(format: "%.0f KB", value / 1e3) }
        return "\(n) bytes"
    }
}

#if canImport(Glibc)
private let Glibc_read = Glibc.read
private let Glibc_write = Glibc.write
#else
private let Glibc_read = Darwin.read
private let Glibc_write = Darwin.write
#endif

/// The temporary files of writes in progress, in a fixed table a signal handler can walk
/// without allocating or locking.
enum TemporaryFiles {
    static let capacity = 64
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let table = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        table.initialize(repeating: nil, count: capacity)
        return table
    }()
    static let lock = NSLock()

    /// Registers `path`; returns its slot (or -1 when the table is full: then only the normal
    /// exit paths remove it).
    static func register(_ path: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where slots[i] == nil {
            slots[i] = strdup(path)
            return i
        }
        return -1
    }

    static func unregister(_ slot: Int) {
        guard slot >= 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        let path = slots[slot]
        slots[slot] = nil
        free(path)
    }

    /// Called from a signal handler: unlink only (async-signal-safe).
    static func removeAll() {
        for i in 0..<capacity {
            if let path = slots[i] { unlink(path) }
        }
    }
}

private func installHandler(_ signalNumber: Int32) {
    #if canImport(Glibc)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { received in
        TemporaryFiles.removeAll()
        signal(received, SIG_DFL)
        raise(received)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(signalNumber, &action, nil)
    #else
    signal(signalNumber) { received in
        TemporaryFiles.removeAll()
        signal(received, SIG_DFL)
        raise(received)
    }
    #endif
}
