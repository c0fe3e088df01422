/// A problem with a file a user gave: where it is (path, and line and column for text) and what
/// is wrong, in one line suitable for `error: …` output.
public struct FileError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(path: String, line: Int? = nil, column: Int? = nil, _ message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

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
