using System.Text;
using Microsoft.AspNetCore.Http;

namespace StyleTransfer.Web;

/// <summary>A refusal with its HTTP status and the one line shown to the user.</summary>
public sealed class RequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// Uploaded images: the kind is sniffed from the first bytes (never the name or the declared type),
/// the file is stored under a generated name, and then read by the library's own header check, so
/// a refusal is the line the CLI prints for the same file, with the user's file name in it.
/// </summary>
public static class Uploads
{
    private const string Unsupported = "is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)";

    /// <summary>The kind of image the bytes start with: its extension and content type, or null.</summary>
    public static (string Extension, string ContentType)? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((byte[])[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return (".png", "image/png");
        }

        if (head.StartsWith((byte[])[0xFF, 0xD8, 0xFF]))
        {
            return (".jpg", "image/jpeg");
        }

        if (head.StartsWith("GIF87a"u8) || head.StartsWith("GIF89a"u8))
        {
            return (".gif", "image/gif");
        }

        if (head.StartsWith("BM"u8) && head.Length >= 14)
        {
            return (".bmp", "image/bmp");
        }

        if (head.Length >= 12 && head.StartsWith("RIFF"u8) && head[8..12].SequenceEqual("WEBP"u8))
        {
            return (".webp", "image/webp");
        }

        if (head.StartsWith((byte[])[(byte)'I', (byte)'I', 42, 0]) || head.StartsWith((byte[])[(byte)'M', (byte)'M', 0, 42]))
        {
            return (".tif", "image/tiff");
        }

        return null;
    }

    /// <summary>The user's file name for display: its last part, printable, at most 80 characters. Never a path on this machine.</summary>
    public static string DisplayName(string? fileName)
    {
        string name = (fileName ?? "").Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        var sb = new StringBuilder();
        foreach (char c in name)
        {
            if (!char.IsControl(c) && c != '\'' && c != '"')
            {
                sb.Append(c);
            }
        }

        string s = sb.ToString().Trim();
        return s.Length == 0 ? "upload" : s.Length > 80 ? s[..80] : s;
    }

    /// <summary>Stores one uploaded image under a generated name in <paramref name="folder"/> and checks it; throws <see cref="RequestException"/>.</summary>
    public static async Task<StoredImage> SaveAsync(IFormFile file, string what, string folder, WebSettings settings, CancellationToken cancellation)
    {
        string name = DisplayName(file.FileName);
        if (file.Length > settings.MaxUploadBytes)
        {
            throw new RequestException(StatusCodes.Status413PayloadTooLarge, $"{what} '{name}' is too large ({FormatBytes(file.Length)}; at most {FormatBytes(settings.MaxUploadBytes)} per image)");
        }

        byte[] head = new byte[16];
        int got;
        await using (Stream s = file.OpenReadStream())
        {
            got = await s.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellation);
        }

        if (Sniff(head.AsSpan(0, got)) is not { } kind)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, $"{what} '{name}' {Unsupported}");
        }

        string stored = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12)) + kind.Extension;
        string path = Path.Combine(folder, stored);
        try
        {
            await using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                await file.CopyToAsync(output, cancellation);
            }

            (int w, int h) = StyleEngine.Probe(path, what);
            double megapixels = (double)w * h / 1e6;
            if (megapixels > settings.MaxMegapixels)
            {
                throw new RequestException(StatusCodes.Status413PayloadTooLarge, string.Create(
                    System.Globalization.CultureInfo.InvariantCulture,
                    $"{what} '{name}' is too large ({w}x{h}, {megapixels:G3} megapixels; at most {settings.MaxMegapixels:G3} here)"));
            }

            return new StoredImage(name, stored, kind.ContentType, w, h);
        }
        catch (StyleTransferException e)
        {
            File.Delete(path);
            throw new RequestException(StatusCodes.Status400BadRequest, e.Message.Replace($"'{path}'", $"'{name}'", StringComparison.Ordinal));
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>"25 MB", "12.1 KB".</summary>
    public static string FormatBytes(long bytes) => bytes >= 1024 * 1024
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024.0):0.#} MB")
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KB");
}
