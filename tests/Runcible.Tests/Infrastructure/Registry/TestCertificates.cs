using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>
/// A throw-away certificate authority made by the test, and certificates it issues: a TLS server
/// certificate for 127.0.0.1/localhost (for the TLS registry) and a token-signing certificate (for the
/// token server). Written as PEM files so Go tools (docker-registry, skopeo) can read them.
/// </summary>
public sealed class TestCertificateAuthority : IDisposable
{
    private readonly ECDsa _caKey;

    public TestCertificateAuthority(string directory, string commonName = "Runcible Test CA")
    {
        System.IO.Directory.CreateDirectory(directory);
        this.Directory = directory;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        Certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
        CertificatePath = Path.Combine(directory, "ca.crt");
        File.WriteAllText(CertificatePath, Certificate.ExportCertificatePem() + "\n");
    }

    public string Directory { get; }

    /// <summary>The CA certificate (public part only is meaningful to clients).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>PEM file of the CA certificate, named <c>ca.crt</c>: a directory holding it works as skopeo's <c>--cert-dir</c>.</summary>
    public string CertificatePath { get; }

    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>Issues a certificate for the given purpose; writes <c>&lt;name&gt;.crt</c> and <c>&lt;name&gt;.key</c> (PKCS#8 PEM).
    /// A server certificate names 127.0.0.1 and localhost, plus <paramref name="address"/> and <paramref name="dnsNames"/>.</summary>
    public IssuedCertificate Issue(string name, bool serverAuth, IPAddress? address = null, params string[] dnsNames)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            if (address is not null && !address.Equals(IPAddress.Loopback))
            {
                names.AddIpAddress(address);
            }

            foreach (var dnsName in dnsNames)
            {
                names.AddDnsName(dnsName);
            }
            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        }

        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(Certificate, now.AddDays(-1), now.AddDays(6), serial);
        var certificate = issued.CopyWithPrivateKey(key);
        var certificatePath = Path.Combine(Directory, name + ".crt");
        var keyPath = Path.Combine(Directory, name + ".key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        return new IssuedCertificate(certificate, key, certificatePath, keyPath);
    }

    public void Dispose()
    {
        Certificate.Dispose();
        _caKey.Dispose();
    }
}

/// <summary>A certificate issued by <see cref="TestCertificateAuthority"/>, with its key and PEM files.</summary>
public sealed record IssuedCertificate(X509Certificate2 Certificate, ECDsa Key, string CertificatePath, string KeyPath);
