using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Multiprocessing.Serialization;

namespace Multiprocessing.Tests;

#pragma warning disable CA1001 // Test holders keep disposable values on purpose: the point is that they must not cross.
#pragma warning disable CA5394 // Random only drives deterministic fuzzing here; nothing security-related.

public sealed class SerializerTests
{
    private static readonly BinarySerializer Binary = BinarySerializer.Default;

    // ───────────────────────────── helpers ─────────────────────────────

    private static T RoundTrip<T>(T value) => Binary.Deserialize<T>(Binary.Serialize(value));

    private static object? RoundTripBoxed(object? value) => Binary.Deserialize(Binary.Serialize(value));

    /// <summary>Round-trips both statically typed and boxed (typed as object), and checks equality both ways.</summary>
    private static void AssertRoundTrips<T>(T value)
    {
        Assert.Equal(value, RoundTrip(value));
        object? boxed = RoundTripBoxed(value);
        Assert.Equal(value, (T)boxed!);
    }

    private static SerializationException WriteFails(object value) => Assert.Throws<SerializationException>(() => Binary.Serialize(value));

    /// <summary>Deserializing <paramref name="data"/> either works or throws a <see cref="SerializationException"/>; nothing else.</summary>
    private static void AssertOnlySerializationException(byte[] data)
    {
        Exception? ex = Record.Exception(() => Binary.Deserialize(data));
        if (ex is not null and not SerializationException)
        {
            Assert.Fail($"Input [{Convert.ToHexString(data)}] threw {ex.GetType()}: {ex}");
        }
    }

    /// <summary>Builds a message by hand, the way Wire.cs lays it out.</summary>
    private static byte[] Craft(Action<ObjectWriter> body)
    {
        var writer = new ObjectWriter();
        writer.WriteByte(Wire.FormatVersion);
        body(writer);
        return writer.WrittenSpan.ToArray();
    }

    private static byte[] Utf16(string text) => Encoding.Unicode.GetBytes(text);

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    // ───────────────────────────── primitives ─────────────────────────────

    [Fact]
    public void Integers_of_every_width_round_trip_at_their_extremes()
    {
        AssertRoundTrips(sbyte.MinValue);
        AssertRoundTrips(sbyte.MaxValue);
        AssertRoundTrips(byte.MaxValue);
        AssertRoundTrips(short.MinValue);
        AssertRoundTrips(ushort.MaxValue);
        AssertRoundTrips(int.MinValue);
        AssertRoundTrips(int.MaxValue);
        AssertRoundTrips(uint.MaxValue);
        AssertRoundTrips(long.MinValue);
        AssertRoundTrips(ulong.MaxValue);
        AssertRoundTrips(Int128.MinValue);
        AssertRoundTrips(Int128.MaxValue);
        AssertRoundTrips(UInt128.MaxValue);
        AssertRoundTrips(0);
        AssertRoundTrips(-1L);
    }

    [Fact]
    public void Floating_point_values_round_trip_bit_for_bit()
    {
        foreach (double d in new[] { 0.0, -0.0, 1.5, double.Epsilon, double.MaxValue, double.NegativeInfinity, double.NaN, Math.PI })
        {
            Assert.Equal(BitConverter.DoubleToInt64Bits(d), BitConverter.DoubleToInt64Bits(RoundTrip(d)));
            Assert.Equal(BitConverter.DoubleToInt64Bits(d), BitConverter.DoubleToInt64Bits((double)RoundTripBoxed(d)!));
        }

        foreach (float f in new[] { 0f, -0f, float.Epsilon, float.MaxValue, float.PositiveInfinity, float.NaN, 3.25f })
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(f), BitConverter.SingleToInt32Bits(RoundTrip(f)));
        }

        foreach (Half h in new[] { Half.MinValue, Half.MaxValue, Half.Epsilon, (Half)1.5f, Half.NaN, Half.NegativeZero })
        {
            Assert.Equal(BitConverter.HalfToInt16Bits(h), BitConverter.HalfToInt16Bits(RoundTrip(h)));
            Assert.Equal(BitConverter.HalfToInt16Bits(h), BitConverter.HalfToInt16Bits((Half)RoundTripBoxed(h)!));
        }
    }

    [Fact]
    public void Char_and_bool_round_trip()
    {
        AssertRoundTrips('A');
        AssertRoundTrips('\0');
        AssertRoundTrips('\uFFFF');
        AssertRoundTrips('é');
        AssertRoundTrips(true);
        AssertRoundTrips(false);
    }

    [Fact]
    public void Decimal_keeps_value_and_scale()
    {
        foreach (decimal m in new[] { decimal.MaxValue, decimal.MinValue, 0m, -0.0001m, 1.10m, 1.1m, 79228162514264337593543.950335m })
        {
            decimal back = RoundTrip(m);
            Assert.Equal(decimal.GetBits(m), decimal.GetBits(back));
            Assert.Equal(m.ToString(System.Globalization.CultureInfo.InvariantCulture), back.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(m, (decimal)RoundTripBoxed(m)!);
        }
    }

    [Fact]
    public void Strings_round_trip_including_empty_non_ascii_and_lone_surrogates()
    {
        foreach (string s in new[] { "", "hello", "héllo wörld ✓ 日本語 🎉", "embedded\0null", "\uD800lone surrogate", new string('x', 10_000) })
        {
            Assert.Equal(s, RoundTrip(s));
            Assert.Equal(s, RoundTripBoxed(s));
        }
    }

    [Fact]
    public void A_null_string_round_trips_as_null()
    {
        Assert.Null(RoundTrip<string?>(null));
        Assert.Null(RoundTripBoxed(null));
    }

    [Theory]
    [InlineData(DateTimeKind.Utc)]
    [InlineData(DateTimeKind.Local)]
    [InlineData(DateTimeKind.Unspecified)]
    public void DateTime_keeps_ticks_and_kind(DateTimeKind kind)
    {
        var value = new DateTime(2024, 2, 29, 13, 45, 30, 123, kind).AddTicks(4567);
        DateTime back = RoundTrip(value);
        Assert.Equal(value.Ticks, back.Ticks);
        Assert.Equal(kind, back.Kind);
        var boxed = (DateTime)RoundTripBoxed(value)!;
        Assert.Equal(kind, boxed.Kind);
        Assert.Equal(value.Ticks, boxed.Ticks);
    }

    [Fact]
    public void Date_and_time_structs_round_trip()
    {
        var offset = new DateTimeOffset(2001, 9, 9, 1, 46, 40, TimeSpan.FromMinutes(330));
        DateTimeOffset offsetBack = RoundTrip(offset);
        Assert.Equal(offset, offsetBack);
        Assert.Equal(offset.Offset, offsetBack.Offset);
        AssertRoundTrips(DateTime.MaxValue);
        AssertRoundTrips(DateTimeOffset.MinValue);
        AssertRoundTrips(TimeSpan.FromTicks(-123_456_789_012));
        AssertRoundTrips(TimeSpan.MaxValue);
        AssertRoundTrips(new Guid("01234567-89ab-cdef-0123-456789abcdef"));
        AssertRoundTrips(Guid.Empty);
        AssertRoundTrips(new DateOnly(1969, 7, 20));
        AssertRoundTrips(new TimeOnly(23, 59, 59, 999));
    }

    [Fact]
    public void Enums_round_trip_with_their_underlying_type()
    {
        AssertRoundTrips(DayOfWeek.Saturday);
        AssertRoundTrips(Permissions.Read | Permissions.Execute);
        AssertRoundTrips((Permissions)0xFF);
        AssertRoundTrips(Tiny.Negative);
        AssertRoundTrips(Huge.Max);
        AssertRoundTrips(Wide.Big);

        object boxed = RoundTripBoxed(Permissions.Write | Permissions.Read)!;
        Assert.IsType<Permissions>(boxed);
        Assert.Equal(Permissions.Read | Permissions.Write, (Permissions)boxed);
        Assert.IsType<Huge>(RoundTripBoxed(Huge.Max));
    }

    [Fact]
    public void Nullables_round_trip_as_null_or_value()
    {
        Assert.Null(RoundTrip<int?>(null));
        Assert.Equal(42, RoundTrip<int?>(42));
        Assert.Null(RoundTrip<DateTime?>(null));
        Assert.Equal(DateTimeKind.Utc, RoundTrip<DateTime?>(DateTime.UnixEpoch)!.Value.Kind);
        Assert.Equal(Permissions.Write, RoundTrip<Permissions?>(Permissions.Write));
    }

    [Fact]
    public void A_nullable_struct_holding_a_string_round_trips()
    {
        LabeledValue? value = new LabeledValue("answer", 42);
        LabeledValue? back = RoundTrip(value);
        Assert.True(back.HasValue);
        Assert.Equal("answer", back.Value.Label);
        Assert.Equal(42, back.Value.Value);
        Assert.Null(RoundTrip<LabeledValue?>(null));

        var holder = new NullableHolder { Maybe = new LabeledValue("x", 1), Missing = null, Count = 3 };
        NullableHolder holderBack = RoundTrip(holder);
        Assert.Equal(new LabeledValue("x", 1), holderBack.Maybe);
        Assert.Null(holderBack.Missing);
        Assert.Equal(3, holderBack.Count);
    }

    // ───────────────────────────── arrays ─────────────────────────────

    [Fact]
    public void Primitive_arrays_round_trip()
    {
        int[] ints = [1, -2, int.MaxValue, int.MinValue, 0];
        Assert.Equal(ints, RoundTrip(ints));
        long[] longs = [long.MinValue, 5];
        Assert.Equal(longs, RoundTrip(longs));
        double[] doubles = [1.5, double.NaN];
        Assert.Equal(doubles, RoundTrip(doubles));
        char[] chars = "chars".ToCharArray();
        Assert.Equal(chars, RoundTrip(chars));
        bool[] bools = [true, false, true];
        Assert.Equal(bools, RoundTrip(bools));
        DateTime[] dates = [DateTime.UnixEpoch, DateTime.MinValue];
        Assert.Equal(dates, RoundTrip(dates));
    }

    [Fact]
    public void A_one_mebibyte_byte_array_round_trips()
    {
        byte[] data = new byte[1 << 20];
        new Random(7).NextBytes(data);
        byte[] back = RoundTrip(data);
        Assert.True(data.AsSpan().SequenceEqual(back));
    }

    [Fact]
    public void String_arrays_round_trip_with_nulls()
    {
        string?[] strings = ["a", null, "", "ünïcode"];
        Assert.Equal(strings, RoundTrip(strings));
    }

    [Fact]
    public void Object_arrays_keep_the_runtime_type_of_every_element()
    {
        object?[] mixed =
        [
            1, "two", 3.0, null, new[] { 4, 5 }, DayOfWeek.Friday, (int?)7, new Guid("11111111-2222-3333-4444-555555555555"),
            new List<int> { 8 }, 9L, 'c', 10m, (byte)11, new LabeledValue("s", 12), new Person("Ada", 36),
        ];
        object?[] back = RoundTrip(mixed);
        Assert.Equal(mixed.Length, back.Length);
        Assert.IsType<int>(back[0]);
        Assert.Equal(1, back[0]);
        Assert.Equal("two", back[1]);
        Assert.IsType<double>(back[2]);
        Assert.Null(back[3]);
        Assert.Equal(new[] { 4, 5 }, Assert.IsType<int[]>(back[4]));
        Assert.Equal(DayOfWeek.Friday, Assert.IsType<DayOfWeek>(back[5]));
        Assert.Equal(7, Assert.IsType<int>(back[6]));
        Assert.Equal(mixed[7], Assert.IsType<Guid>(back[7]));
        Assert.Equal([8], Assert.IsType<List<int>>(back[8]));
        Assert.IsType<long>(back[9]);
        Assert.IsType<char>(back[10]);
        Assert.IsType<decimal>(back[11]);
        Assert.IsType<byte>(back[12]);
        Assert.Equal(new LabeledValue("s", 12), Assert.IsType<LabeledValue>(back[13]));
        Assert.Equal(new Person("Ada", 36), Assert.IsType<Person>(back[14]));
    }

    [Fact]
    public void Jagged_arrays_round_trip_and_keep_shared_rows()
    {
        int[] shared = [7, 8];
        int[][] jagged = [[1], [], [2, 3, 4], shared, shared];
        int[][] back = RoundTrip(jagged);
        Assert.Equal(jagged.Length, back.Length);
        for (int i = 0; i < jagged.Length; i++)
        {
            Assert.Equal(jagged[i], back[i]);
        }

        Assert.Same(back[3], back[4]);
    }

    [Fact]
    public void Multi_dimensional_arrays_round_trip()
    {
        var grid = new int[3, 4];
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 4; j++)
            {
                grid[i, j] = (i * 10) + j;
            }
        }

        int[,] gridBack = RoundTrip(grid);
        Assert.Equal(3, gridBack.GetLength(0));
        Assert.Equal(4, gridBack.GetLength(1));
        Assert.Equal(grid, gridBack);

        var cube = new string?[2, 3, 4];
        for (int i = 0; i < 2; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                for (int k = 0; k < 4; k++)
                {
                    cube[i, j, k] = (i + j + k) % 3 == 0 ? null : $"{i}{j}{k}";
                }
            }
        }

        var cubeBack = (string?[,,])RoundTripBoxed(cube)!;
        Assert.Equal(3, cubeBack.Rank);
        Assert.Equal(cube, cubeBack);
    }

    [Fact]
    public void Arrays_with_non_zero_lower_bounds_keep_their_bounds()
    {
        var vector = Array.CreateInstance(typeof(string), [3], [-2]);
        vector.SetValue("minus two", -2);
        vector.SetValue("zero", 0);
        var vectorBack = (Array)RoundTripBoxed(vector)!;
        Assert.Equal(vector.GetType(), vectorBack.GetType());
        Assert.Equal(-2, vectorBack.GetLowerBound(0));
        Assert.Equal("minus two", vectorBack.GetValue(-2));
        Assert.Null(vectorBack.GetValue(-1));
        Assert.Equal("zero", vectorBack.GetValue(0));

        var matrix = Array.CreateInstance(typeof(double), [2, 2], [1, 10]);
        matrix.SetValue(1.5, 2, 11);
        var matrixBack = (Array)RoundTripBoxed(matrix)!;
        Assert.Equal(1, matrixBack.GetLowerBound(0));
        Assert.Equal(10, matrixBack.GetLowerBound(1));
        Assert.Equal(1.5, matrixBack.GetValue(2, 11));
    }

    [Fact]
    public void Empty_arrays_round_trip()
    {
        Assert.Empty(RoundTrip(Array.Empty<int>()));
        Assert.Empty(RoundTrip(Array.Empty<string>()));
        Assert.Empty(RoundTrip(Array.Empty<object>()));
        Assert.Empty(RoundTrip(Array.Empty<Person>()));
        int[,] empty2d = RoundTrip(new int[0, 5]);
        Assert.Equal(0, empty2d.GetLength(0));
        Assert.Equal(5, empty2d.GetLength(1));
    }

    [Fact]
    public void Unmanaged_struct_arrays_use_the_raw_fast_path()
    {
        var pixels = new Pixel[10_000];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = new Pixel { R = (byte)i, G = (byte)(i >> 8), B = 3, A = 255, Depth = i * 0.5f };
        }

        byte[] bytes = Binary.Serialize(pixels);
        int raw = pixels.Length * Marshal.SizeOf<Pixel>();
        Assert.InRange(bytes.Length, raw, raw + 256);
        Assert.Equal(pixels, Binary.Deserialize<Pixel[]>(bytes));
    }

    [Fact]
    public void A_one_mebibyte_byte_array_costs_no_per_element_overhead()
    {
        byte[] bytes = Binary.Serialize(new byte[1 << 20]);
        Assert.InRange(bytes.Length, 1 << 20, (1 << 20) + 64);
    }

    [Fact]
    public void A_million_char_string_costs_two_bytes_per_char()
    {
        string text = new('ß', 1_000_000);
        byte[] bytes = Binary.Serialize(text);
        Assert.InRange(bytes.Length, 2_000_000, 2_000_000 + 64);
        Assert.Equal(text, Binary.Deserialize<string>(bytes));
    }

    // ───────────────────────────── collections ─────────────────────────────

    [Fact]
    public void Lists_round_trip()
    {
        Assert.Equal([1, 2, 3], RoundTrip(new List<int> { 1, 2, 3 }));
        Assert.Equal(["a", null, "c"], RoundTrip(new List<string?> { "a", null, "c" }));
        Assert.Equal([new Person("A", 1), new Person("B", 2)], RoundTrip(new List<Person> { new("A", 1), new("B", 2) }));
        Assert.Equal([new Pixel { R = 1 }], RoundTrip(new List<Pixel> { new() { R = 1 } }));
        Assert.Empty(RoundTrip(new List<object>()));
    }

    [Fact]
    public void Dictionaries_round_trip()
    {
        var dictionary = new Dictionary<int, string> { [1] = "one", [2] = "two", [-3] = "minus three" };
        Assert.Equal(dictionary, RoundTrip(dictionary));

        var nested = new Dictionary<string, object?> { ["list"] = new List<int> { 1 }, ["null"] = null, ["n"] = 5 };
        Dictionary<string, object?> nestedBack = RoundTrip(nested);
        Assert.Equal([1], Assert.IsType<List<int>>(nestedBack["list"]));
        Assert.Null(nestedBack["null"]);
        Assert.Equal(5, nestedBack["n"]);
    }

    [Fact]
    public void A_dictionary_keeps_its_case_insensitive_comparer()
    {
        var dictionary = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["Alpha"] = 1, ["BETA"] = 2 };
        Dictionary<string, int> back = RoundTrip(dictionary);
        Assert.Equal(1, back["ALPHA"]);
        Assert.Equal(2, back["beta"]);
        Assert.True(back.ContainsKey("alpha"));
        Assert.Equal(2, back.Count);

        var plain = new Dictionary<string, int> { ["Alpha"] = 1 };
        Assert.False(RoundTrip(plain).ContainsKey("ALPHA"));
    }

    [Fact]
    public void A_dictionary_with_a_culture_aware_comparer_round_trips_and_still_works()
    {
        // The comparer's CompareInfo rebuilds its native collator in [OnDeserialized]; without it, the first lookup crashed the process.
        var dictionary = new Dictionary<string, int>(StringComparer.InvariantCultureIgnoreCase) { ["\u00C5ngstr\u00F6m"] = 1, ["Apple"] = 2 };
        Dictionary<string, int> back = RoundTrip(dictionary);
        Assert.Equal(1, back["A\u030ANGSTRO\u0308M"]); // decomposed and upper-cased: equal only to a culture-aware comparer
        Assert.Equal(2, back["APPLE"]);

        var german = System.Globalization.CultureInfo.GetCultureInfo("de-DE").CompareInfo;
        Assert.Equal(german.Compare("a", "B"), RoundTrip(german).Compare("a", "B"));
    }

    [Fact]
    public void Hash_sets_keep_items_and_comparer()
    {
        var set = new HashSet<int> { 3, 1, 4, 1, 5 };
        Assert.True(set.SetEquals(RoundTrip(set)));

        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Bob" };
        Assert.Contains("BOB", RoundTrip(names));
    }

    [Fact]
    public void A_queue_keeps_its_order()
    {
        var queue = new System.Collections.Generic.Queue<string>();
        queue.Enqueue("first");
        queue.Enqueue("second");
        queue.Enqueue("third");
        queue.Dequeue();
        queue.Enqueue("fourth"); // wraps around the internal ring buffer
        System.Collections.Generic.Queue<string> back = RoundTrip(queue);
        Assert.Equal(queue.ToArray(), back.ToArray());
        Assert.Equal("second", back.Dequeue());
    }

    [Fact]
    public void A_stack_pops_in_the_same_order()
    {
        var stack = new Stack<int>();
        for (int i = 1; i <= 5; i++)
        {
            stack.Push(i);
        }

        Stack<int> back = RoundTrip(stack);
        Assert.Equal(stack.Count, back.Count);
        while (stack.Count > 0)
        {
            Assert.Equal(stack.Pop(), back.Pop());
        }
    }

    [Fact]
    public void A_concurrent_dictionary_round_trips()
    {
        var dictionary = new ConcurrentDictionary<string, List<int>>();
        dictionary["a"] = [1, 2];
        dictionary["b"] = [];
        ConcurrentDictionary<string, List<int>> back = RoundTrip(dictionary);
        Assert.Equal(2, back.Count);
        Assert.Equal([1, 2], back["a"]);
        Assert.Empty(back["b"]);

        var insensitive = new ConcurrentDictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["Key"] = 1 };
        Assert.Equal(1, RoundTrip(insensitive)["KEY"]);
    }

    [Fact]
    public void Collections_typed_as_interfaces_come_back_as_their_concrete_type()
    {
        var holder = new InterfaceHolder
        {
            Items = new List<string> { "x" },
            Lookup = new Dictionary<string, int> { ["y"] = 1 },
            Sequence = new System.Collections.Generic.Queue<int>([1, 2]),
        };
        InterfaceHolder back = RoundTrip(holder);
        Assert.IsType<List<string>>(back.Items);
        Assert.IsType<Dictionary<string, int>>(back.Lookup);
        Assert.Equal([1, 2], Assert.IsType<System.Collections.Generic.Queue<int>>(back.Sequence));
    }

    // ───────────────────────────── tuples, records, classes, structs ─────────────────────────────

    [Fact]
    public void Reference_tuples_round_trip()
    {
        var tuple = Tuple.Create(1, "two", new List<int> { 3 });
        Tuple<int, string, List<int>> back = RoundTrip(tuple);
        Assert.Equal(1, back.Item1);
        Assert.Equal("two", back.Item2);
        Assert.Equal([3], back.Item3);

        var eight = Tuple.Create(1, 2, 3, 4, 5, 6, 7, "eight");
        Assert.Equal(eight, RoundTrip(eight));
    }

    [Fact]
    public void Value_tuples_round_trip_including_long_ones()
    {
        (int, string, double?) small = (1, "two", null);
        Assert.Equal(small, RoundTrip(small));
        (int, int, int, int, int, int, int, int, string) nine = (1, 2, 3, 4, 5, 6, 7, 8, "nine");
        Assert.Equal(nine, RoundTrip(nine));
        Assert.Equal(nine, RoundTripBoxed(nine));
    }

    [Fact]
    public void Class_and_struct_records_round_trip_with_value_equality()
    {
        var person = new Person("Grace", 85);
        Assert.Equal(person, RoundTrip(person));

        var employee = new Employee("Linus", 54, "Kernel");
        Person back = RoundTrip<Person>(employee);
        Assert.Equal(employee, Assert.IsType<Employee>(back));

        var point = new Point(3, -4, "p");
        Assert.Equal(point, RoundTrip(point));
        Assert.Equal(point, RoundTripBoxed(point));
    }

    [Fact]
    public void Private_readonly_and_public_fields_and_properties_round_trip()
    {
        var account = new Account("Ada", 12.5m, new Guid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"))
        {
            Nickname = "countess",
            Created = new DateOnly(1843, 1, 1),
        };
        account.Deposit(7.5m);
        Account back = RoundTrip(account);
        Assert.Equal("Ada", back.Owner);
        Assert.Equal(20m, back.Balance);
        Assert.Equal(account.Id, back.Id);
        Assert.Equal(["opened", "deposit 7.5"], back.History);
        Assert.Equal("countess", back.Nickname);
        Assert.Equal(new DateOnly(1843, 1, 1), back.Created);
    }

    [Fact]
    public void Structs_with_private_and_readonly_fields_round_trip()
    {
        var value = new Measurement("temperature", 21.5, [1, 2, 3]);
        Measurement back = RoundTrip(value);
        Assert.Equal("temperature", back.Name);
        Assert.Equal(21.5, back.Value);
        Assert.Equal([1, 2, 3], back.Samples);
    }

    [Fact]
    public void Base_class_private_fields_survive()
    {
        var dog = new Dog("Rex", 4, "collie");
        Dog back = RoundTrip(dog);
        Assert.Equal("Rex", back.SecretName);
        Assert.Equal(4, back.LegCount);
        Assert.Equal("collie", back.Breed);
    }

    [Fact]
    public void Members_typed_as_base_interface_or_object_come_back_as_the_derived_type()
    {
        var zoo = new Zoo
        {
            Star = new Dog("Rex", 4, "collie"),
            Shape = new Circle(2.0),
            BoxedShape = new SquareShape(3),
            Anything = new Dictionary<string, int> { ["k"] = 1 },
            Others = [new Dog("Fido", 3, "mutt"), new Animal("generic", 2), 5, "five"],
        };

        Zoo back = RoundTrip(zoo);
        Dog star = Assert.IsType<Dog>(back.Star);
        Assert.Equal("Rex", star.SecretName);
        Assert.Equal(new Circle(2.0), Assert.IsType<Circle>(back.Shape));
        Assert.Equal(9, Assert.IsType<SquareShape>(back.BoxedShape).Area(), 10);
        Assert.Equal(1, Assert.IsType<Dictionary<string, int>>(back.Anything)["k"]);
        Assert.Equal("mutt", Assert.IsType<Dog>(back.Others[0]).Breed);
        Assert.IsType<Animal>(back.Others[1]);
        Assert.Equal(5, back.Others[2]);
        Assert.Equal("five", back.Others[3]);
    }

    [Fact]
    public void Many_instances_of_a_type_round_trip_through_the_emitted_accessors()
    {
        // Field accessors switch from reflection to emitted IL after a few calls; both must agree.
        var accounts = Enumerable.Range(0, 50).Select(i => new Account($"owner{i}", i, Guid.NewGuid()) { Nickname = $"n{i}" }).ToList();
        var measurements = Enumerable.Range(0, 50).Select(i => new Measurement($"m{i}", i, [i])).ToArray();
        for (int round = 0; round < 3; round++)
        {
            List<Account> back = RoundTrip(accounts);
            Measurement[] measurementsBack = RoundTrip(measurements);
            for (int i = 0; i < accounts.Count; i++)
            {
                Assert.Equal($"owner{i}", back[i].Owner);
                Assert.Equal(i, back[i].Balance);
                Assert.Equal(accounts[i].Id, back[i].Id);
                Assert.Equal($"n{i}", back[i].Nickname);
                Assert.Equal($"m{i}", measurementsBack[i].Name);
                Assert.Equal([i], measurementsBack[i].Samples);
            }
        }
    }

    [Fact]
    public void Type_values_round_trip()
    {
        Assert.Equal(typeof(List<int>), RoundTrip(typeof(List<int>)));
        Assert.Equal(typeof(int[,]), RoundTrip(typeof(int[,])));
        Assert.Equal(typeof(Dictionary<,>), RoundTrip(typeof(Dictionary<,>)));
        Assert.Equal(typeof(Person), RoundTripBoxed(typeof(Person)));
        Assert.Equal(typeof(Dictionary<string, List<Person>>[]), RoundTrip(typeof(Dictionary<string, List<Person>>[])));

        Type[] types = [typeof(string), typeof(string)];
        Type[] back = RoundTrip(types);
        Assert.Same(typeof(string), back[0]);
        Assert.Same(back[0], back[1]);
    }

    // ───────────────────────────── identity and cycles ─────────────────────────────

    [Fact]
    public void An_object_referenced_twice_comes_back_as_one_object()
    {
        var shared = new Node("shared");
        var graph = new List<object> { shared, shared, new Node("other") { Next = shared } };
        List<object> back = RoundTrip(graph);
        Assert.Same(back[0], back[1]);
        Assert.Same(back[0], ((Node)back[2]).Next);
        Assert.NotSame(back[0], back[2]);

        (Node, Node) pair = RoundTrip((shared, shared));
        Assert.Same(pair.Item1, pair.Item2);
    }

    [Fact]
    public void A_node_pointing_at_itself_round_trips()
    {
        var node = new Node("loop");
        node.Next = node;
        Node back = RoundTrip(node);
        Assert.Equal("loop", back.Name);
        Assert.Same(back, back.Next);
    }

    [Fact]
    public void A_list_containing_itself_round_trips()
    {
        var list = new List<object> { 1 };
        list.Add(list);
        List<object> back = RoundTrip(list);
        Assert.Equal(1, back[0]);
        Assert.Same(back, back[1]);
    }

    [Fact]
    public void A_dictionary_and_an_array_containing_themselves_round_trip()
    {
        var dictionary = new Dictionary<string, object>();
        dictionary["self"] = dictionary;
        Dictionary<string, object> back = RoundTrip(dictionary);
        Assert.Same(back, back["self"]);

        object[] array = new object[2];
        array[0] = array;
        array[1] = "x";
        object[] arrayBack = RoundTrip(array);
        Assert.Same(arrayBack, arrayBack[0]);
    }

    [Fact]
    public void A_parent_child_doubly_linked_pair_round_trips()
    {
        var parent = new TreeNode("parent");
        var child = new TreeNode("child") { Parent = parent };
        parent.Children.Add(child);
        parent.Children.Add(new TreeNode("second") { Parent = parent });

        TreeNode back = RoundTrip(parent);
        Assert.Equal(2, back.Children.Count);
        Assert.Same(back, back.Children[0].Parent);
        Assert.Same(back, back.Children[1].Parent);
        Assert.Equal("child", back.Children[0].Name);

        TreeNode childBack = RoundTrip(child);
        Assert.Same(childBack, childBack.Parent!.Children[0]);
    }

    [Fact]
    public void A_cycle_through_a_boxed_struct_round_trips()
    {
        var holder = new BoxHolder();
        holder.Boxed = new StructWithReference { Owner = holder, Number = 9 };
        BoxHolder back = RoundTrip(holder);
        var inner = Assert.IsType<StructWithReference>(back.Boxed);
        Assert.Same(back, inner.Owner);
        Assert.Equal(9, inner.Number);
    }

    [Fact]
    public void A_long_chain_round_trips()
    {
        Node head = Chain(500);
        Node? back = RoundTrip(head);
        int count = 0;
        for (; back is not null; back = back.Next)
        {
            Assert.Equal($"n{count}", back.Name);
            count++;
        }

        Assert.Equal(500, count);
    }

    [Fact]
    public void A_chain_too_deep_for_the_stack_fails_cleanly_instead_of_crashing()
    {
        // A stack overflow would kill the whole process; a deep graph must be refused with an exception.
        Node head = Chain(2_000_000);
        var ex = Assert.Throws<SerializationException>(() => Binary.Serialize(head));
        Assert.Contains("deep", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Deeply_nested_input_fails_cleanly_instead_of_crashing()
    {
        // One million nested object[1]: two bytes per level.
        int objectArray = Wire.BuiltinIds[typeof(object[])];
        byte[] data = Craft(w =>
        {
            for (int i = 0; i < 1_000_000; i++)
            {
                w.WriteVarUInt((ulong)objectArray);
                w.WriteVarUInt(1);
            }

            w.WriteVarUInt(Wire.Null);
        });
        Assert.Throws<SerializationException>(() => Binary.Deserialize(data));

        // One million nested array types: int[][][]...
        byte[] types = Craft(w =>
        {
            for (int i = 0; i < 1_000_000; i++)
            {
                w.WriteVarUInt(Wire.InlineType);
                w.WriteByte(Wire.KindArray);
            }

            w.WriteVarUInt((ulong)Wire.BuiltinIds[typeof(int)]);
            w.WriteVarUInt(0);
        });
        Assert.Throws<SerializationException>(() => Binary.Deserialize(types));
    }

    private static Node Chain(int length)
    {
        Node? head = null;
        for (int i = length - 1; i >= 0; i--)
        {
            head = new Node($"n{i}") { Next = head };
        }

        return head!;
    }

    // ───────────────────────────── delegates ─────────────────────────────

    [Fact]
    public void A_delegate_to_a_static_method_round_trips()
    {
        Func<int, int> square = Square;
        Func<int, int> back = RoundTrip(square);
        Assert.Equal(49, back(7));
        Assert.Null(back.Target);

        Func<string, int> parse = int.Parse;
        Assert.Equal(123, RoundTrip(parse)("123"));
    }

    [Fact]
    public void A_delegate_to_an_instance_method_carries_its_target()
    {
        var adder = new Adder(10);
        Func<int, int> add = adder.Add;
        Func<int, int> back = RoundTrip(add);
        Assert.Equal(15, back(5));
        Assert.IsType<Adder>(back.Target);
        Assert.NotSame(adder, back.Target);
    }

    [Fact]
    public void A_lambda_capturing_locals_carries_them()
    {
        int factor = 3;
        string prefix = "result=";
        var offsets = new List<int> { 100 };
        Func<int, string> format = n => prefix + ((n * factor) + offsets[0]);
        Func<int, string> back = RoundTrip(format);
        Assert.Equal("result=106", back(2));
    }

    [Fact]
    public void A_lambda_capturing_this_carries_the_instance()
    {
        var greeter = new Greeter("Hello, ");
        Func<string, string> direct = greeter.MakeGreeting();
        Assert.Equal("Hello, Ada", RoundTrip(direct)("Ada"));

        Func<string, string> withLocal = greeter.MakeRepeatedGreeting(2);
        Assert.Equal("Hello, Bob!!", RoundTrip(withLocal)("Bob"));
    }

    [Fact]
    public void Nested_closures_carry_variables_from_both_scopes()
    {
        int outer = 1000;
        Func<int, Func<int, int>> make = x =>
        {
            int inner = x * 2;
            return y => outer + inner + y;
        };

        Func<int, int> made = make(5);
        Assert.Equal(1013, RoundTrip(made)(3));
        Assert.Equal(1000 + 14 + 1, RoundTrip(make)(7)(1));
    }

    [Fact]
    public void Local_functions_round_trip()
    {
        int offset = 40;
        int AddOffset(int v) => v + offset;
        static int Twice(int v) => v * 2;

        Assert.Equal(42, RoundTrip<Func<int, int>>(AddOffset)(2));
        Assert.Equal(8, RoundTrip<Func<int, int>>(Twice)(4));
    }

    [Fact]
    public void Delegates_to_generic_methods_keep_their_type_arguments()
    {
        Func<int, string> describeInt = Describe<int>;
        Assert.Equal("Int32:5", RoundTrip(describeInt)(5));

        Func<List<string>, string> describeList = Describe<List<string>>;
        Assert.Equal("List`1:System.Collections.Generic.List`1[System.String]", RoundTrip(describeList)([]));

        Func<int, string> closureInGeneric = MakeFormatter<int>("#");
        Assert.Equal("#42", RoundTrip(closureInGeneric)(42));

        Func<bool> anyChar = "abc".Any; // generic extension method closed over its first argument
        Assert.True(RoundTrip(anyChar)());

        Func<int> fromGenericType = new GenericBox<string>("boxed").Count;
        Assert.Equal(5, RoundTrip(fromGenericType)());
    }

    [Fact]
    public void Multicast_delegates_keep_their_whole_invocation_list()
    {
        string tag = "c";
        Action<List<string>> all = list => list.Add("a");
        all += AppendB;
        all += list => list.Add(tag);

        Action<List<string>> back = RoundTrip(all);
        Assert.Equal(3, back.GetInvocationList().Length);
        var log = new List<string>();
        back(log);
        Assert.Equal(["a", "b", "c"], log);
    }

    [Fact]
    public void A_recursive_lambda_capturing_itself_round_trips()
    {
        Func<int, long>? factorial = null;
        factorial = n => n <= 1 ? 1 : n * factorial!(n - 1);
        Func<int, long> back = RoundTrip(factorial);
        Assert.Equal(3_628_800, back(10));
    }

    [Fact]
    public void A_recursive_lambda_round_trips_whichever_of_it_and_its_closure_comes_first()
    {
        Func<int, int>? fibonacci = null;
        fibonacci = n => n < 2 ? n : fibonacci!(n - 1) + fibonacci(n - 2);

        object?[] delegateFirst = RoundTrip(new object?[] { fibonacci, fibonacci.Target });
        var fromDelegateFirst = Assert.IsType<Func<int, int>>(delegateFirst[0]);
        Assert.Same(delegateFirst[1], fromDelegateFirst.Target);
        Assert.Equal(55, fromDelegateFirst(10));

        object?[] closureFirst = RoundTrip(new object?[] { fibonacci.Target, fibonacci });
        var fromClosureFirst = Assert.IsType<Func<int, int>>(closureFirst[1]);
        Assert.Same(closureFirst[0], fromClosureFirst.Target);
        Assert.Equal(55, fromClosureFirst(10));
    }

    [Fact]
    public void Delegates_inside_an_object_graph_round_trip()
    {
        int bonus = 1;
        var pipeline = new Pipeline
        {
            Steps = [x => x + bonus, Square, new Adder(100).Add],
            OnDone = null,
        };

        Pipeline back = RoundTrip(pipeline);
        Assert.Equal(((2 + 1) * (2 + 1)) + 100, back.Run(2));
        Assert.Null(back.OnDone);
    }

    [Fact]
    public void Builtin_delegate_types_round_trip()
    {
        var log = new List<int>();
        Action action = () => log.Add(1);
        Action back = RoundTrip(action);
        back();
        Assert.Empty(log); // the list was copied, not shared
        Assert.Single(((Func<List<int>>)RoundTrip<Func<List<int>>>(() => [7]))());

        Func<Task> asyncWork = () => Task.CompletedTask;
        Assert.True(RoundTrip(asyncWork)().IsCompletedSuccessfully);
    }

    // ───────────────────────────── exceptions ─────────────────────────────

    [Fact]
    public void An_exception_keeps_its_type_and_message()
    {
        var back = RoundTrip<Exception>(new InvalidOperationException("boom"));
        Assert.Equal("boom", Assert.IsType<InvalidOperationException>(back).Message);
    }

    [Fact]
    public void An_argument_exception_keeps_its_parameter_name()
    {
        ArgumentException back = RoundTrip(new ArgumentException("bad value", "count"));
        Assert.Equal("count", back.ParamName);
        Assert.StartsWith("bad value", back.Message, StringComparison.Ordinal);

        var outOfRange = RoundTrip<Exception>(new ArgumentOutOfRangeException("index", 42, "too big"));
        Assert.Equal(42, Assert.IsType<ArgumentOutOfRangeException>(outOfRange).ActualValue);
    }

    [Fact]
    public void A_custom_exception_keeps_its_extra_fields()
    {
        var back = (QuotaExceededException)RoundTripBoxed(new QuotaExceededException("over quota", 250) { Details = ["a", "b"] })!;
        Assert.Equal("over quota", back.Message);
        Assert.Equal(250, back.Limit);
        Assert.Equal(["a", "b"], back.Details);
    }

    [Fact]
    public void An_inner_exception_chain_round_trips()
    {
        var chain = new InvalidOperationException("outer", new ArgumentException("middle", new FormatException("deepest")));
        Exception back = RoundTrip<Exception>(chain);
        Assert.IsType<InvalidOperationException>(back);
        ArgumentException middle = Assert.IsType<ArgumentException>(back.InnerException);
        Assert.Equal("middle", middle.Message);
        Assert.Equal("deepest", Assert.IsType<FormatException>(middle.InnerException).Message);
    }

    [Fact]
    public void A_thrown_exception_keeps_its_original_stack_frames()
    {
        Exception caught = CatchFrom(ThrowingHelper);
        Assert.Contains(nameof(ThrowingHelper), caught.StackTrace, StringComparison.Ordinal);

        Exception back = RoundTrip(caught);
        Assert.NotNull(back.StackTrace);
        Assert.Contains(nameof(ThrowingHelper), back.StackTrace, StringComparison.Ordinal);
        Assert.Contains(nameof(ThrowingHelper), back.ToString(), StringComparison.Ordinal);

        // Rethrowing the copy still shows where it first came from.
        Exception rethrown = CatchFrom(() => throw back);
        Assert.Contains(nameof(ThrowingHelper), rethrown.StackTrace, StringComparison.Ordinal);
    }

    [Fact]
    public void An_aggregate_exception_keeps_all_its_inner_exceptions()
    {
        var aggregate = new AggregateException("many", new InvalidOperationException("one"), new FormatException("two"));
        AggregateException back = RoundTrip(aggregate);
        Assert.Equal(2, back.InnerExceptions.Count);
        Assert.IsType<InvalidOperationException>(back.InnerExceptions[0]);
        Assert.Equal("two", back.InnerExceptions[1].Message);
    }

    [Fact]
    public void A_remote_exception_keeps_remote_type_and_stack_trace()
    {
        Exception caught = CatchFrom(() => throw new InvalidOperationException("outer", CatchFrom(ThrowingHelper)));
        RemoteException remote = RemoteException.FromException(caught);
        RemoteException back = RoundTrip(remote);
        Assert.Equal("System.InvalidOperationException", back.RemoteType);
        Assert.Equal("outer", back.Message);
        Assert.Equal(remote.RemoteStackTrace, back.RemoteStackTrace);
        Assert.Contains(nameof(CatchFrom), back.RemoteStackTrace, StringComparison.Ordinal);
        RemoteException inner = Assert.IsType<RemoteException>(back.InnerException);
        Assert.Equal("System.Exception", inner.RemoteType);
        Assert.Contains(nameof(ThrowingHelper), inner.RemoteStackTrace, StringComparison.Ordinal);
        Assert.Contains("System.InvalidOperationException: outer", back.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_exception_held_in_an_object_field_comes_back_as_its_derived_type()
    {
        var holder = new Zoo { Anything = new KeyNotFoundException("missing") };
        Assert.Equal("missing", Assert.IsType<KeyNotFoundException>(RoundTrip(holder).Anything).Message);
    }

    private static Exception CatchFrom(Action action)
    {
        try
        {
            action();
        }
        catch (Exception ex)
        {
            return ex;
        }

        throw new InvalidOperationException("Expected an exception.");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowingHelper() => throw new Exception("thrown on purpose");

    // ───────────────────────────── values that must not cross ─────────────────────────────

    [Fact]
    public void A_field_holding_a_memory_stream_is_refused_with_its_path()
    {
        using var stream = new MemoryStream();
        var ex = WriteFails(new StreamHolder { Payload = stream });
        Assert.Contains("field 'Payload'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.IO.MemoryStream", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_null_stream_field_is_fine()
    {
        StreamHolder back = RoundTrip(new StreamHolder { Payload = null, Label = "kept" });
        Assert.Null(back.Payload);
        Assert.Equal("kept", back.Label);
    }

    [Fact]
    public void A_thread_field_is_refused()
    {
        var ex = WriteFails(new Holder<Thread>(Thread.CurrentThread));
        Assert.Contains("field 'Value'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.Threading.Thread", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_task_field_is_refused()
    {
        var ex = WriteFails(new Holder<Task<int>>(Task.FromResult(1)));
        Assert.Contains("field 'Value'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.Threading.Tasks.Task", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_safe_handle_field_is_refused()
    {
        using var handle = new SafeFileHandle(IntPtr.Zero, ownsHandle: false);
        var ex = WriteFails(new Holder<SafeHandle>(handle));
        Assert.Contains("field 'Value'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Microsoft.Win32.SafeHandles.SafeFileHandle", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cancellation_token_source_field_is_refused()
    {
        using var source = new CancellationTokenSource();
        var ex = WriteFails(new Holder<object>(source));
        Assert.Contains("field 'Value'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.Threading.CancellationTokenSource", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pointer_sized_and_pointer_fields_are_refused()
    {
        var ex = WriteFails(new PointerHolder { Address = 0x1234 });
        Assert.Contains("field 'Address'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.IntPtr", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);

        var unsafeEx = WriteFails(new RawPointerHolder());
        Assert.Contains("field 'Pointer'", unsafeEx.Message, StringComparison.Ordinal);
        Assert.Contains("System.Int32*", unsafeEx.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lambda_capturing_a_stream_fails_with_the_closure_field_path()
    {
        using var log = new StreamWriter(new MemoryStream());
        Action<string> write = message => log.WriteLine(message);
        var ex = Assert.Throws<SerializationException>(() => Binary.Serialize(write));
        Assert.Contains("closure field 'log'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.IO.StreamWriter", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
        Assert.Contains("lambda in " + nameof(Lambda_capturing_a_stream_fails_with_the_closure_field_path), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nested_offending_members_are_reported_with_the_whole_path()
    {
        using var stream = new MemoryStream();
        var outer = new Holder<List<object>>([1, new Holder<object>(new StreamHolder { Payload = stream })]);
        var ex = WriteFails(outer);
        Assert.Contains("field 'Payload' of type System.IO.MemoryStream", ex.Message, StringComparison.Ordinal);
        Assert.Contains("field 'Value' → item [1] → field 'Value' → field 'Payload'", ex.Message, StringComparison.Ordinal);

        using var source = new CancellationTokenSource();
        var dictionaryEx = WriteFails(new Dictionary<string, object> { ["cts"] = source });
        Assert.Contains("value for key 'cts'", dictionaryEx.Message, StringComparison.Ordinal);

        var arrayEx = WriteFails(new object[] { 1, Thread.CurrentThread });
        Assert.Contains("element [1]", arrayEx.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lambda_capturing_this_reports_the_captured_instance_in_the_path()
    {
        using var stream = new MemoryStream();
        var owner = new StreamOwner(stream);
        var ex = Assert.Throws<SerializationException>(() => Binary.Serialize(owner.MakeReader(3)));
        Assert.Contains("captured 'this'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("field '_stream'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cancellation_token_field_is_refused()
    {
        var ex = WriteFails(new Holder<CancellationToken>(CancellationToken.None));
        Assert.Contains("System.Threading.CancellationToken", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_write_does_not_poison_the_next_one()
    {
        using var stream = new MemoryStream();
        WriteFails(new StreamHolder { Payload = stream });
        var node = new Node("fine");
        node.Next = node;
        Node back = RoundTrip(node);
        Assert.Same(back, back.Next);
    }

    // ───────────────────────────── bad input on read ─────────────────────────────

    [Fact]
    public void Empty_input_is_refused()
    {
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize(ReadOnlySpan<byte>.Empty));
        Assert.Contains("empty", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Input_with_a_wrong_first_byte_is_refused()
    {
        byte[] data = Binary.Serialize("hello");
        data[0] ^= 0xFF;
        Assert.Throws<SerializationException>(() => Binary.Deserialize(data));
        Assert.Throws<SerializationException>(() => Binary.Deserialize<string>("{\"json\":1}"u8));
    }

    [Fact]
    public void Trailing_bytes_are_refused()
    {
        byte[] data = [.. Binary.Serialize(5), 0];
        Assert.Throws<SerializationException>(() => Binary.Deserialize<int>(data));
    }

    [Fact]
    public void Every_truncation_of_a_message_is_refused()
    {
        byte[] data = Binary.Serialize(ComplexGraph());
        Assert.NotNull(Binary.Deserialize(data));
        for (int length = 0; length < data.Length; length++)
        {
            byte[] prefix = data[..length];
            Exception? ex = Record.Exception(() => Binary.Deserialize(prefix));
            Assert.True(ex is SerializationException, $"Prefix of {length}/{data.Length} bytes gave {ex?.GetType().Name ?? "no exception"}: {ex}");
        }
    }

    [Fact]
    public void Random_garbage_only_ever_raises_serialization_exceptions()
    {
        var random = new Random(20240229);
        for (int i = 0; i < 500; i++)
        {
            byte[] data = new byte[random.Next(1, 96)];
            random.NextBytes(data);
            if (i % 4 != 0)
            {
                data[0] = Wire.FormatVersion; // get past the marker most of the time
            }

            if (i % 2 == 0 && data.Length > 1)
            {
                data[1] = (byte)random.Next(0, 70); // aim at the interesting tags
            }

            AssertOnlySerializationException(data);
        }
    }

    [Fact]
    public void Mutated_valid_messages_only_ever_raise_serialization_exceptions()
    {
        byte[] original = Binary.Serialize(ComplexGraph());
        var random = new Random(1234);
        for (int i = 0; i < 1500; i++)
        {
            byte[] data = (byte[])original.Clone();
            int flips = random.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(1, data.Length);
                data[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)(data[at] ^ (1 << random.Next(8))),
                    _ => (byte)(data[at] + 1),
                };
            }

            AssertOnlySerializationException(data);
        }
    }

    [Theory]
    [InlineData(0x8000_0000UL)] // 2^31: above int.MaxValue
    [InlineData(int.MaxValue)]
    [InlineData(ulong.MaxValue)]
    public void An_absurd_length_prefix_is_refused_without_allocating_it(ulong claimed)
    {
        Type[] containers = [typeof(int[]), typeof(object[]), typeof(string), typeof(List<int>), typeof(List<string>), typeof(Dictionary<string, string>), typeof(byte[]), typeof(Action)];
        foreach (Type container in containers)
        {
            byte[] data = Craft(w =>
            {
                w.WriteVarUInt((ulong)Wire.BuiltinIds[container]);
                if (container == typeof(Dictionary<string, string>))
                {
                    w.WriteVarUInt(Wire.Null); // default comparer
                }

                w.WriteVarUInt(claimed);
                w.WriteInt64(0);
            });
            AssertRefusedCheaply(data);
        }

        // Rank-2 array claiming int.MaxValue × int.MaxValue elements.
        AssertRefusedCheaply(Craft(w =>
        {
            w.WriteVarUInt(Wire.InlineType);
            w.WriteByte(Wire.KindMultiArray);
            w.WriteVarUInt((ulong)Wire.BuiltinIds[typeof(int)]);
            w.WriteVarUInt(2);
            for (int d = 0; d < 2; d++)
            {
                w.WriteVarUInt(claimed);
                w.WriteInt32(0);
            }
        }));

        // A hash set and a queue of a custom element type.
        foreach (Type generic in new[] { typeof(HashSet<>), typeof(System.Collections.Generic.Queue<>), typeof(Stack<>) })
        {
            AssertRefusedCheaply(Craft(w =>
            {
                w.WriteTypeReference(generic.MakeGenericType(typeof(Person)));
                if (generic == typeof(HashSet<>))
                {
                    w.WriteVarUInt(Wire.Null);
                }

                w.WriteVarUInt(claimed);
            }));
        }
    }

    private static void AssertRefusedCheaply(byte[] data)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<SerializationException>(() => Binary.Deserialize(data));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 << 20, $"Refusing [{Convert.ToHexString(data)}] allocated {allocated} bytes.");
    }

    [Fact]
    public void An_unknown_type_name_is_refused_with_the_name()
    {
        // Serialize a real type, then patch one letter of its name in the bytes.
        byte[] data = Binary.Serialize(new PatchableTypeAaaa { Value = 1 });
        int at = IndexOf(data, Utf16(nameof(PatchableTypeAaaa)));
        Assert.True(at > 0);
        Utf16("Zzzz").CopyTo(data, at + Utf16("PatchableType").Length);
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize(data));
        Assert.Contains("PatchableTypeZzzz", ex.Message, StringComparison.Ordinal);

        // The same, built by hand.
        byte[] crafted = Craft(w =>
        {
            w.WriteVarUInt(Wire.InlineType);
            w.WriteByte(Wire.KindNamed);
            w.WriteString("System.Private.CoreLib");
            w.WriteString("System.NoSuchTypeAnywhere");
        });
        var craftedEx = Assert.Throws<SerializationException>(() => Binary.Deserialize(crafted));
        Assert.Contains("System.NoSuchTypeAnywhere", craftedEx.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_type_from_an_assembly_outside_the_application_is_refused()
    {
        byte[] crafted = Craft(w =>
        {
            w.WriteVarUInt(Wire.InlineType);
            w.WriteByte(Wire.KindNamed);
            w.WriteString("Evil.Payload.Assembly");
            w.WriteString("Evil.Gadget");
        });
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize(crafted));
        Assert.Contains("Evil.Payload.Assembly", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not part of this application", ex.Message, StringComparison.Ordinal);

        // Patching the assembly name of a real message gives the same answer.
        byte[] data = Binary.Serialize(new PatchableTypeAaaa { Value = 1 });
        byte[] assemblyName = Utf16(typeof(PatchableTypeAaaa).Assembly.GetName().Name!);
        int at = IndexOf(data, assemblyName);
        Assert.True(at > 0);
        Utf16("Q").CopyTo(data, at);
        Assert.Contains("not part of this application", Assert.Throws<SerializationException>(() => Binary.Deserialize(data)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_crossable_types_named_in_input_are_refused_on_read()
    {
        byte[] crafted = Craft(w =>
        {
            w.WriteTypeReference(typeof(MemoryStream));
            w.WriteInt64(0);
        });
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize(crafted));
        Assert.Contains("System.IO.MemoryStream", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deserializing_as_the_wrong_type_names_both_types()
    {
        byte[] text = Binary.Serialize("hello");
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize<List<int>>(text));
        Assert.Contains("System.Collections.Generic.List<System.Int32>", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.String", ex.Message, StringComparison.Ordinal);

        byte[] person = Binary.Serialize(new Person("A", 1));
        var recordEx = Assert.Throws<SerializationException>(() => Binary.Deserialize<Node>(person));
        Assert.Contains(nameof(Node), recordEx.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(Person), recordEx.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deserializing_a_value_as_another_value_type_names_both_types()
    {
        var ex = Assert.Throws<SerializationException>(() => Binary.Deserialize<float>(Binary.Serialize(42)));
        Assert.Contains("System.Single", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.Int32", ex.Message, StringComparison.Ordinal);

        var fromString = Assert.Throws<SerializationException>(() => Binary.Deserialize<int>(Binary.Serialize("hello")));
        Assert.Contains("System.Int32", fromString.Message, StringComparison.Ordinal);
        Assert.Contains("System.String", fromString.Message, StringComparison.Ordinal);

        Assert.Throws<SerializationException>(() => Binary.Deserialize<int>(Binary.Serialize<string?>(null)));
        Assert.Throws<SerializationException>(() => Binary.Deserialize<string>(Binary.Serialize(42)));
    }

    [Fact]
    public void Values_and_boxed_values_are_interchangeable_on_the_wire()
    {
        Assert.Equal(42, Binary.Deserialize<int>(Binary.Serialize<object>(42)));
        Assert.Equal(42, Binary.Deserialize<object>(Binary.Serialize(42)));
        Assert.Equal(42, Binary.Deserialize<int?>(Binary.Serialize(42)));
        Assert.Equal(42, Binary.Deserialize<int>(Binary.Serialize<int?>(42)));
        Assert.Null(Binary.Deserialize<int?>(Binary.Serialize<object?>(null)));
        Assert.Equal(new LabeledValue("x", 1), Binary.Deserialize<LabeledValue>(Binary.Serialize<object>(new LabeledValue("x", 1))));
    }

    // ───────────────────────────── extensibility ─────────────────────────────

    [Fact]
    public void A_registered_converter_is_used()
    {
        BinarySerializer.RegisterConverter(new TemperatureConverter());
        var value = new Temperature { Kelvin = 300.25 };
        byte[] data = Binary.Serialize(new List<Temperature> { value });
        Assert.True(IndexOf(data, TemperatureConverter.Marker) >= 0);
        List<Temperature> back = Binary.Deserialize<List<Temperature>>(data);
        Assert.Equal(300.25, back[0].Kelvin);
        Assert.True(back[0].ReadByConverter);
    }

    [Fact]
    public void A_converter_named_by_the_attribute_is_used()
    {
        var value = new Celsius(36.6);
        byte[] data = Binary.Serialize<object>(value);
        Assert.True(IndexOf(data, "C36.6"u8.ToArray()) >= 0);
        Celsius back = Assert.IsType<Celsius>(Binary.Deserialize(data));
        Assert.Equal(36.6, back.Degrees);
        Assert.True(back.ViaAttribute);
    }

    [Fact]
    public void A_registered_converter_for_a_struct_is_used()
    {
        BinarySerializer.RegisterConverter(new RgbConverter());
        Rgb back = RoundTrip(new Rgb(1, 2, 3));
        Assert.Equal(new Rgb(2, 3, 4), back); // the converter adds one to every channel
    }

    [Fact]
    public void Registering_a_converter_after_first_use_is_refused()
    {
        Binary.Serialize(new LateRegistration());
        Assert.Throws<InvalidOperationException>(() => BinarySerializer.RegisterConverter(new LateRegistrationConverter()));
    }

    [Fact]
    public void NonSerialized_fields_come_back_as_default()
    {
        var value = new WithCache { Kept = "kept", Cache = "dropped", Counter = 5 };
        WithCache back = RoundTrip(value);
        Assert.Equal("kept", back.Kept);
        Assert.Null(back.Cache);
        Assert.Equal(0, back.Counter);
    }

    [Fact]
    public void OnDeserialized_methods_rebuild_skipped_state_base_class_first()
    {
        var value = new DerivedWithCallback("abc");
        Assert.Equal(3, value.Length);
        DerivedWithCallback back = RoundTrip(value);
        Assert.Equal(3, back.Length);
        Assert.Equal(["base", "derived"], back.CallbackOrder);
    }

    [Fact]
    public void Collections_of_structs_whose_fields_are_all_skipped_round_trip()
    {
        var list = new List<OnlySkipped> { new() { Cache = "a" }, new() { Cache = "b" }, new() };
        Assert.Equal(3, RoundTrip(list).Count);
        Assert.Equal(4, RoundTrip(new OnlySkipped[4]).Length);
        Assert.Equal(2, RoundTrip(new Dictionary<int, OnlySkipped> { [1] = default, [2] = default }).Count);
    }

    // ───────────────────────────── entry points ─────────────────────────────

    [Fact]
    public void The_buffer_writer_overload_appends_a_readable_message()
    {
        var output = new ArrayBufferWriter<byte>();
        output.Write<byte>([0xAA, 0xBB]);
        Binary.Serialize(output, ComplexGraph());
        Assert.Equal([0xAA, 0xBB], output.WrittenSpan[..2].ToArray());
        Assert.Equal(Binary.Serialize(ComplexGraph()), output.WrittenSpan[2..].ToArray());
        Holder<object> back = Binary.Deserialize<Holder<object>>(output.WrittenSpan[2..]);
        Assert.IsType<List<object?>>(back.Value);
    }

    [Fact]
    public void Serializing_twice_gives_identical_bytes()
    {
        Assert.Equal(Binary.Serialize(ComplexGraph()), Binary.Serialize(ComplexGraph()));
    }

    [Fact]
    public void Concurrent_use_from_many_threads_is_safe()
    {
        byte[] expected = Binary.Serialize(ComplexGraph());
        Parallel.For(0, 64, _ =>
        {
            for (int i = 0; i < 20; i++)
            {
                byte[] data = Binary.Serialize(ComplexGraph());
                Assert.Equal(expected, data);
                Assert.NotNull(Binary.Deserialize<Holder<object>>(data));
            }
        });
    }

    [Fact]
    public void A_converter_may_serialize_recursively()
    {
        var value = new Envelope { Inner = new Node("wrapped") };
        value.Inner.Next = value.Inner;
        Envelope back = RoundTrip(new List<Envelope> { value, value })[0];
        Assert.Equal("wrapped", back.Inner!.Name);
        Assert.Same(back.Inner, back.Inner.Next);
    }

    /// <summary>A moderately complex graph: cycles, shared references, collections, delegates, exceptions, structs.</summary>
    private static Holder<object> ComplexGraph()
    {
        var node = new Node("a");
        node.Next = new Node("b") { Next = node };
        int captured = 5;
        Func<int, int> lambda = x => x + captured;
        return new Holder<object>(new List<object?>
        {
            node,
            node,
            new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["x"] = 1 },
            new int[,] { { 1, 2 }, { 3, 4 } },
            "text",
            null,
            3.5,
            new Person("P", 1),
            new Measurement("m", 2.5, [1, 2]),
            lambda,
            new InvalidOperationException("err", new FormatException("inner")),
            typeof(Dictionary<string, List<int>>),
            (1, "tuple"),
            new HashSet<string> { "s" },
            DateTimeKind.Utc,
            new LabeledValue?(new LabeledValue("n", 3)),
            new Dictionary<string, int>(StringComparer.InvariantCultureIgnoreCase) { ["i"] = 2 },
            RecursiveLambda(),
        });
    }

    private static Func<int, int> RecursiveLambda()
    {
        Func<int, int>? sum = null;
        sum = n => n <= 0 ? 0 : n + sum!(n - 1);
        return sum;
    }

    // ───────────────────────────── test types ─────────────────────────────

    private static int Square(int x) => x * x;

    private static void AppendB(List<string> list) => list.Add("b");

    private static string Describe<T>(T value) => typeof(T).Name + ":" + value;

    private static Func<T, string> MakeFormatter<T>(string prefix) => value => prefix + value;

    [Flags]
    private enum Permissions : byte
    {
        None = 0,
        Read = 1,
        Write = 2,
        Execute = 4,
    }

    private enum Tiny : sbyte
    {
        Negative = -5,
        Positive = 5,
    }

    private enum Huge : long
    {
        Max = long.MaxValue,
    }

    private enum Wide : ulong
    {
        Big = ulong.MaxValue - 1,
    }

    private readonly record struct LabeledValue(string Label, int Value);

    private sealed class NullableHolder
    {
        public LabeledValue? Maybe { get; set; }

        public LabeledValue? Missing { get; set; }

        public int? Count { get; set; }
    }

    [StructLayout(LayoutKind.Sequential)]
    private record struct Pixel
    {
        public byte R;
        public byte G;
        public byte B;
        public byte A;
        public float Depth;
    }

    private record Person(string Name, int Age);

    private sealed record Employee(string Name, int Age, string Company) : Person(Name, Age);

    private readonly record struct Point(int X, int Y, string Label);

    private sealed class Account(string owner, decimal balance, Guid id)
    {
        private readonly string _owner = owner;
        private decimal _balance = balance;
        public readonly Guid Id = id;

        public List<string> History { get; } = ["opened"];

        public string Owner => _owner;

        public decimal Balance => _balance;

        public string? Nickname { get; set; }

        public DateOnly Created { get; init; }

        public void Deposit(decimal amount)
        {
            _balance += amount;
            History.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"deposit {amount}"));
        }
    }

    private readonly struct Measurement(string name, double value, int[] samples)
    {
        private readonly string _name = name;

        public double Value { get; } = value;

        public int[] Samples { get; } = samples;

        public string Name => _name;
    }

    private class Animal(string secretName, int legs)
    {
        private readonly string _secretName = secretName;
        private readonly int _legs = legs;

        public string SecretName => _secretName;

        public int LegCount => _legs;
    }

    private sealed class Dog(string name, int legs, string breed) : Animal(name, legs)
    {
        private readonly string _breed = breed;

        public string Breed => _breed;
    }

    private interface IShape
    {
        double Area();
    }

    private sealed record Circle(double Radius) : IShape
    {
        public double Area() => Math.PI * Radius * Radius;
    }

    private readonly struct SquareShape(double side) : IShape
    {
        private readonly double _side = side;

        public double Area() => _side * _side;
    }

    private sealed class Zoo
    {
        public Animal? Star { get; set; }

        public IShape? Shape { get; set; }

        public IShape? BoxedShape { get; set; }

        public object? Anything { get; set; }

        public List<object> Others { get; set; } = [];
    }

    private sealed class InterfaceHolder
    {
        public IList<string>? Items { get; set; }

        public IReadOnlyDictionary<string, int>? Lookup { get; set; }

        public IEnumerable<int>? Sequence { get; set; }
    }

    private sealed class Node(string name)
    {
        public string Name { get; } = name;

        public Node? Next { get; set; }
    }

    private sealed class TreeNode(string name)
    {
        public string Name { get; } = name;

        public TreeNode? Parent { get; set; }

        public List<TreeNode> Children { get; } = [];
    }

    private sealed class BoxHolder
    {
        public object? Boxed { get; set; }
    }

    private struct StructWithReference
    {
        public BoxHolder Owner;
        public int Number;
    }

    private sealed class Holder<T>(T value)
    {
        public T Value = value;
    }

    private sealed class StreamHolder
    {
        public Stream? Payload;
        public string? Label;
    }

    private sealed class PointerHolder
    {
        public nint Address;
    }

    private sealed unsafe class RawPointerHolder
    {
#pragma warning disable CS0649 // never assigned: only its presence matters
        public int* Pointer;
#pragma warning restore CS0649
    }

    private sealed class StreamOwner(Stream stream)
    {
        private readonly Stream _stream = stream;

        public Func<int> MakeReader(int extra) => () => _stream.ReadByte() + extra;
    }

    private sealed class Adder(int amount)
    {
        private readonly int _amount = amount;

        public int Add(int x) => x + _amount;
    }

    private sealed class Greeter(string prefix)
    {
        private readonly string _prefix = prefix;

        public Func<string, string> MakeGreeting() => name => _prefix + name;

        public Func<string, string> MakeRepeatedGreeting(int times) => name => _prefix + name + new string('!', times);
    }

    private sealed class GenericBox<T>(T value)
    {
        private readonly T _value = value;

        public int Count() => _value?.ToString()?.Length ?? 0;
    }

    private sealed class Pipeline
    {
        public List<Func<int, int>> Steps { get; init; } = [];

        public Action? OnDone { get; init; }

        public int Run(int input) => Steps.Aggregate(input, (value, step) => step(value));
    }

    private sealed class QuotaExceededException : Exception
    {
        public QuotaExceededException()
        {
        }

        public QuotaExceededException(string message)
            : base(message)
        {
        }

        public QuotaExceededException(string message, Exception innerException)
            : base(message, innerException)
        {
        }

        public QuotaExceededException(string message, int limit)
            : base(message) => Limit = limit;

        public int Limit { get; }

        public List<string> Details { get; init; } = [];
    }

    private sealed class PatchableTypeAaaa
    {
        public int Value { get; set; }
    }

    private sealed class Temperature
    {
        public double Kelvin { get; set; }

        public bool ReadByConverter { get; set; }
    }

    private sealed class TemperatureConverter : ObjectConverter<Temperature>
    {
        public static readonly byte[] Marker = "TEMP!"u8.ToArray();

        public override void Write(ObjectWriter writer, Temperature value)
        {
            foreach (byte b in Marker)
            {
                writer.WriteByte(b);
            }

            writer.WriteDouble(value.Kelvin);
        }

        public override Temperature Read(ref ObjectReader reader)
        {
            foreach (byte b in Marker)
            {
                Assert.Equal(b, reader.ReadByte());
            }

            return new Temperature { Kelvin = reader.ReadDouble(), ReadByConverter = true };
        }
    }

    [ObjectConverter(typeof(CelsiusConverter))]
    private sealed class Celsius(double degrees)
    {
        public double Degrees { get; } = degrees;

        public bool ViaAttribute { get; init; }
    }

    private sealed class CelsiusConverter : ObjectConverter<Celsius>
    {
        public override void Write(ObjectWriter writer, Celsius value)
            => writer.WriteBytes(Encoding.ASCII.GetBytes("C" + value.Degrees.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        public override Celsius Read(ref ObjectReader reader)
        {
            string text = Encoding.ASCII.GetString(reader.ReadBytes());
            return new Celsius(double.Parse(text.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture)) { ViaAttribute = true };
        }
    }

    private readonly record struct Rgb(byte R, byte G, byte B);

    private sealed class RgbConverter : ObjectConverter<Rgb>
    {
        public override void Write(ObjectWriter writer, Rgb value)
        {
            writer.WriteByte((byte)(value.R + 1));
            writer.WriteByte((byte)(value.G + 1));
            writer.WriteByte((byte)(value.B + 1));
        }

        public override Rgb Read(ref ObjectReader reader) => new(reader.ReadByte(), reader.ReadByte(), reader.ReadByte());
    }

    private sealed class LateRegistration
    {
        public int Value { get; set; }
    }

    private sealed class LateRegistrationConverter : ObjectConverter<LateRegistration>
    {
        public override void Write(ObjectWriter writer, LateRegistration value) => writer.WriteInt32(value.Value);

        public override LateRegistration Read(ref ObjectReader reader) => new() { Value = reader.ReadInt32() };
    }

    private sealed class WithCache
    {
        public string? Kept;

        [NonSerialized]
        public string? Cache;

        [NonSerialized]
        public int Counter;
    }

    private class BaseWithCallback
    {
        [NonSerialized]
        private List<string> _callbackOrder = [];

        public IReadOnlyList<string> CallbackOrder => _callbackOrder;

        [OnDeserialized]
        private void Rebuild(StreamingContext context) => _callbackOrder = ["base"];
    }

    private sealed class DerivedWithCallback(string text) : BaseWithCallback
    {
        private readonly string _text = text;

        [NonSerialized]
        private int _length = text.Length;

        public int Length => _length;

        [OnDeserialized]
        private void Rebuild(StreamingContext context)
        {
            _length = _text.Length;
            ((List<string>)CallbackOrder).Add("derived");
        }
    }

    private struct OnlySkipped
    {
        [NonSerialized]
        public string? Cache;
    }

    /// <summary>A converter that writes its payload as a nested, separately serialized message.</summary>
    [ObjectConverter(typeof(EnvelopeConverter))]
    private sealed class Envelope
    {
        public Node? Inner { get; set; }
    }

    private sealed class EnvelopeConverter : ObjectConverter<Envelope>
    {
        public override void Write(ObjectWriter writer, Envelope value) => writer.WriteBytes(BinarySerializer.Default.Serialize(value.Inner));

        public override Envelope Read(ref ObjectReader reader)
        {
            byte[] inner = reader.ReadBytes();
            return new Envelope { Inner = BinarySerializer.Default.Deserialize<Node>(inner) };
        }
    }
}
