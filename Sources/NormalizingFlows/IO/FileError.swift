/// A problem with a file a user gave: where it is (path, and line and column for text) and what
/// is wrong, in one line suitable for `error: …` output.
public struct FileError: Error, Equatable, CustomStringConvertible {
    /// The file's path as the user gave it.
    public var path: String
    /// The 1-based line of a text file where the problem is, or `nil`.
    public var line: Int?
    /// The 1-based column of that line, counted in characters, or `nil`.
    public var column: Int?
    /// What is wrong, in words.
    public var message: String

    /// An error about a file.
    /// - Parameters:
    ///   - path: the file's path.
    ///   - line: the 1-based line, for text files (default `nil`).
    ///   - column: the 1-based column in characters (default `nil`).
    ///   - message: what is wrong.
    public init(path: String, line: Int? = nil, column: Int? = nil, _ message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    /// `path:line:column: message`, with the parts that are known.
    public var description: String {
        var location = path
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        return "\(location): \(message)"
    }
}

extension FileError {
    /// `text` made fit for a one-line message: control characters (a NUL, a newline) shown as
    /// escapes and anything past `limit` characters cut, with the full length said.
    public static func clip(_ text: some StringProtocol, limit: Int = 40) -> String {
        var out = ""
        var count = 0
        for character in text {
            if count == limit {
                return out + "… (\(text.count) characters)"
            }
            if character.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                out += character.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? String(format: "\\x%02X", $0.value) : String($0) }.joined()
            } else {
                out.append(character)
            }
            count += 1
        }
        return out
    }
}

/// ``FileError/clip(_:limit:)``.
func clipped(_ text: some StringProtocol, limit: Int = 40) -> String { FileError.clip(text, limit: limit) }
